"""Bad-input cases for the command line: ``lutforge`` run in-process on one bad input, its exit
status and the whole first line of its stderr pinned. A traceback fails the test (a bug escaped the
one error path), and so does a silent success (status 0 where an error was due).

A case's strings may contain ``{tmp}``, the test's own folder; ``files`` are written there first.
"""

from dataclasses import dataclass, field
from pathlib import Path

from lutforge.cli import main

__all__ = ["Case", "check_case"]


@dataclass(frozen=True)
class Case:
    id: str
    argv: tuple
    first_line: str                             # the whole first line of stderr
    files: dict = field(default_factory=dict)   # path under {tmp} -> text (or bytes)
    status: int = 2


def check_case(case: Case, tmp_path: Path, capsys) -> str:
    """Run ``case`` and check it; returns the whole stderr for further checks."""
    def expand(text):
        return text.replace("{tmp}", str(tmp_path)) if isinstance(text, str) else text

    for name, content in case.files.items():
        path = tmp_path / expand(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        content = expand(content)
        path.write_bytes(content) if isinstance(content, bytes) else path.write_text(content)
    try:
        status = main([expand(a) for a in case.argv])
    except SystemExit as exit_:  # argparse's own errors
        status = exit_.code
    _, err = capsys.readouterr()
    assert "Traceback" not in err, err
    assert status == case.status, f"exit status {status}, stderr: {err!r}"
    first = err.splitlines()[0] if err else ""
    assert first == expand(case.first_line)
    return err
