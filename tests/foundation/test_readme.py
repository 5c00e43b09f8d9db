"""The README stays true: every setting the code reads is documented in its table."""

import re

from shared import config


def test_every_environment_variable_is_in_the_readme():
    source = (config.PROJECT_ROOT / "shared" / "config.py").read_text()
    names = set(re.findall(r'_(?:str|int|float|list)\("([A-Z][A-Z0-9_]+)"', source))
    names |= {"DATABASE_URL", "NETLIFY_DB_URL", "NETLIFY_DATABASE_URL", "TEST_DATABASE_URL"}
    readme = (config.PROJECT_ROOT / "README.md").read_text()
    table = "\n".join(line for line in readme.splitlines() if line.startswith("| `"))
    missing = sorted(name for name in names if f"`{name}`" not in table)
    assert len(names) > 40
    assert missing == []


def test_the_readme_gives_the_two_commands():
    readme = (config.PROJECT_ROOT / "README.md").read_text()
    assert "pip install -r requirements.txt && python -m shared.devserver" in readme
    assert "pip install -r requirements.txt && python -m pytest" in readme
