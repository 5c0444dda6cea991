"""The README documents every option of the options table, and no other."""

import os
import re

from racewatch import config
from tests.helpers import ROOT


def test_readme_options_table_matches_the_options_table():
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        readme = f.read()
    documented = set(re.findall(r"^\| `(\w+)` \|", readme, re.M))
    assert documented == {option.name for option in config.OPTIONS}
