"""``lutforge prove``: a catalogue block proven from the command line, its JSON report, and the
usage errors, each one line naming the fix."""

import json
import re

import pytest

from lutforge.cli import main


def test_a_catalogue_block_is_proven_and_its_report_written(tmp_path, capsys):
    out = tmp_path / "prove.json"
    assert main(["prove", "lmul", "format=e2m1", "latency=1", "--json", str(out)]) == 0
    assert "lmul-pipe: PASS" in capsys.readouterr().out
    report = json.loads(out.read_text())
    # The keys `make prove-all` and its readers rely on: one entry per proof, no campaign asked for.
    assert list(report) == ["proofs"]
    assert list(report["proofs"]) == ["lmul-pipe"]
    assert set(report["proofs"]["lmul-pipe"]) == {"name", "status", "engine", "seconds", "detail",
                                                  "counterexample", "cached", "workdir"}
    assert report["proofs"]["lmul-pipe"]["status"] == "PASS"


@pytest.mark.parametrize("argv, message", [
    (["prove", "lmul", "colour=red"], r"Block 'lmul' has no parameter colour"),
    (["prove", "lmul", "format"], r"NAME=VALUE takes NAME=VALUE, not 'format'\."),
    (["prove"], r"Name a catalogue block or a registered proof to prove, or pass --all, --fast or --list"),
    (["prove", "lmul-spec-e4m3-default", "format=e2m1"],
     r"lmul-spec-e4m3-default is a registered proof, which takes no NAME=VALUE parameters"),
])
def test_usage_errors_are_one_line_with_the_fix(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert re.search(message, err), err
