import numpy as np
import pytest

from lutforge.support.checks import check_choice, check_int
from lutforge.support.errors import UsageError


def test_check_int_accepts_integers_in_range():
    assert check_int("lanes", 4) == 4
    assert type(check_int("lanes", np.int64(3), 1, 8)) is int
    assert check_int("seed", 0, 0) == 0


@pytest.mark.parametrize("value, low, high, message", [
    (0, 1, None, r"^lanes=0 is not an integer 1 or more\.$"),
    (9, 1, 8, r"^lanes=9 is not an integer from 1 to 8\.$"),
    (True, 1, None, r"^lanes=True is not an integer 1 or more\.$"),
    (2.0, 1, None, r"^lanes=2\.0 is not an integer 1 or more\.$"),
    ("4", 1, None, r"^lanes='4' is not an integer 1 or more\.$"),
])
def test_check_int_names_value_and_range(value, low, high, message):
    with pytest.raises(UsageError, match=message):
        check_int("lanes", value, low, high)


def test_check_int_appends_the_fix_and_raises_the_callers_error():
    class ConfigError(UsageError):
        pass

    with pytest.raises(ConfigError, match=r"^core\.lanes=0 is not an integer from 1 to 8; build a core\.$"):
        check_int("core.lanes", 0, 1, 8, fix="build a core", error=ConfigError)


def test_check_choice():
    assert check_choice("metric", "l2", ("linf", "l2")) == "l2"
    with pytest.raises(UsageError, match=r"^metric='l1' is not one of 'linf', 'l2'\.$"):
        check_choice("metric", "l1", ("linf", "l2"))
