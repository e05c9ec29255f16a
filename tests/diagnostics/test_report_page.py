"""Report.to_html(): one self-contained page (nothing fetched from elsewhere) with the verdict,
every finding, the yardstick and the run's figure, every piece of text escaped."""

import re
from html.parser import HTMLParser

import numpy as np
import pytest

from diagnostics import Finding, Report
from own_runs import own_report


class Links(HTMLParser):
    """Every src and href of a page, and the text of its tags."""

    def __init__(self):
        super().__init__()
        self.urls, self.tags = [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.urls += [v for k, v in attrs if k in ("src", "href") and v is not None]


def links_of(page: str) -> Links:
    parser = Links()
    parser.feed(page)
    return parser


@pytest.mark.parametrize("name", ["healthy", "watched"])
def test_the_page_is_self_contained_and_names_every_finding(name):
    report = own_report(name)
    page = report.to_html()
    found = links_of(page)
    assert found.urls and all(u.startswith("data:image/png;base64,") for u in found.urls)
    assert not re.search(r"(src|href)=\"(https?:)?//|url\(|@import", page)
    assert "link" not in found.tags and "script" not in found.tags
    for f in report.findings:
        assert f.code in page
    assert report.verdict().split(":")[0] in page


def test_the_yardstick_line_is_on_the_page():
    report = own_report("healthy")
    assert report.yardstick() and "yardstick:" in report.to_html()


FINDING = Finding("made-up", "error", "a <b>bold</b> & 'quoted' claim", {"where": "<layer>"},
                  "fix <script>alert(1)</script>", layer="<0>")


def test_every_piece_of_text_is_escaped():
    page = Report([FINDING], notes=["note <i>"], summary={"model": "<m>"}).to_html()
    assert "<b>bold" not in page and "&lt;b&gt;bold&lt;/b&gt; &amp; &#x27;quoted&#x27;" in page
    assert "<script>" not in page and "&lt;script&gt;" in page
    for text in ("&lt;layer&gt;", "&lt;0&gt;", "note &lt;i&gt;", "model=&lt;m&gt;"):
        assert text in page


def test_a_report_without_data_has_no_figure_and_a_consequence_says_its_cause():
    cause = Finding("cause-code", "error", "m", fix="f", explains=("effect-code",))
    effect = Finding("effect-code", "warning", "m", fix="f", explained_by="cause-code")
    page = Report([cause, effect]).to_html()
    assert "<img" not in page and "follows from:" in page
    assert page.index("cause-code") < page.index("effect-code")


def test_a_finding_free_report_says_nothing_looks_wrong():
    page = Report(history=np.linspace(2, 1, 20)).to_html()
    assert "nothing looks wrong" in page and "<img" in page
