"""The README is the first thing an operator reads: its settings table must be the code's."""

from pathlib import Path

from approvals.cli import settings_markdown

README = Path(__file__).parent.parent / "README.md"


def readme_settings_table() -> str:
    text = README.read_text(encoding="utf-8")
    start = text.index("<!-- settings:start -->") + len("<!-- settings:start -->")
    return text[start : text.index("<!-- settings:end -->")].strip()


def test_readme_settings_table_matches_the_settings_class() -> None:
    assert readme_settings_table() == settings_markdown().strip(), (
        "README settings table is stale: replace it with the output of `approvals settings`"
    )
