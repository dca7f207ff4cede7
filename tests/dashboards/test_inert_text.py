"""Text a school controls is shown as text on every page: never markup, a link or a script.

The pages are rendered from the session's release with every school id, resource id and grade
replaced by hostile HTML (release_fixture.hostile_copy). Jinja must escape it; Plotly, which draws
a subset of HTML in labels, ticks, hover text and annotations, must receive it escaped.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from html.parser import HTMLParser

import plotly.graph_objects as go
import pytest

from dashboards.figures import TEMPLATE_KEYS, plot_text, to_figure

PAGES = ("impact_report.html", "funder_dashboard.html", "compliance_report.html")
RAW = ('<a href="https://evil.example', "<b>bold</b>", "<img src=x", "<script>alert", "<svg onload")


class Tags(HTMLParser):
    """Every start tag of a page with its attributes (script bodies are data, not tags)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def tags_of(html: str) -> list[tuple[str, dict]]:
    parser = Tags()
    parser.feed(html)
    return parser.tags


def plotly_calls(html: str) -> list[tuple[list, dict]]:
    """(data, layout) of every `Plotly.newPlot(id, data, layout, config)` in a page."""
    decoder = json.JSONDecoder()
    calls = []
    for match in re.finditer(r"Plotly\.newPlot\(\s*", html):
        position, arguments = match.end(), []
        for _ in range(4):
            value, position = decoder.raw_decode(html, position)
            arguments.append(value)
            position = re.compile(r"\s*,?\s*").match(html, position).end()
        calls.append((arguments[1], arguments[2]))
    return calls


def strings_outside_templates(value, key: str = ""):
    if isinstance(value, str):
        if key not in TEMPLATE_KEYS:
            yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from strings_outside_templates(v, k)
    elif isinstance(value, list):
        for v in value:
            yield from strings_outside_templates(v, key)


@pytest.mark.parametrize("name", PAGES)
def test_hostile_values_appear_as_text_never_as_markup(release_home, hostile_published, name):
    clean = (release_home.published / name).read_text()
    hostile = (hostile_published / name).read_text()
    for raw in RAW:
        assert raw not in hostile, f"{raw!r} reached {name} unescaped"
    # The same elements as the clean page, attribute for attribute kind: nothing was injected.
    assert Counter(tag for tag, _ in tags_of(hostile)) == Counter(tag for tag, _ in tags_of(clean))
    for tag, attrs in tags_of(hostile):
        assert tag not in ("img", "svg", "b", "iframe", "object"), (tag, attrs)
        assert all(not a.startswith("on") or (tag, a) == ("form", "onsubmit") for a in attrs), (tag, attrs)
        if tag == "a":
            assert attrs.get("href", "#").startswith("#"), attrs  # in-page links only
    # ...and the hostile text is there, as text (so this test is not vacuous).
    assert "&lt;b&gt;bold&lt;/b&gt;" in hostile or "&lt;b&gt;bold" in hostile


@pytest.mark.parametrize("name", PAGES[:2])
def test_every_string_a_chart_receives_is_escaped_for_plotly(hostile_published, name):
    calls = plotly_calls((hostile_published / name).read_text())
    assert calls, "no chart found"
    seen = []
    for data, layout in calls:
        for text in strings_outside_templates([data, layout]):
            assert "<" not in text and ">" not in text, text
            seen.append(text)
    assert any("&lt;img src=x onerror=alert(1)&gt;" in s for s in seen), (
        "hostile values never reached a chart"
    )


def test_to_figure_escapes_labels_titles_annotations_and_hover_but_keeps_templates():
    hostile = '<a href="https://evil.example">x</a>'
    fig = go.Figure(
        go.Bar(
            x=[hostile, "b&c"],
            y=[1, 2],
            text=[hostile, "2"],
            customdata=[hostile, "d"],
            hovertemplate="%{customdata}<extra></extra>",
            name=hostile,
        )
    )
    fig.update_layout(xaxis_title=hostile, yaxis={"tickvals": [1], "ticktext": [hostile]})
    fig.add_annotation(x=hostile, y=1, text=hostile)
    data, layout = plotly_calls(to_figure(fig, "alt", "f").html)[0]
    trace = data[0]
    escaped = plot_text(hostile)
    assert escaped == '&lt;a href="https://evil.example"&gt;x&lt;/a&gt;'
    assert trace["x"] == [escaped, "b&amp;c"] and trace["text"][0] == escaped
    assert trace["customdata"][0] == escaped and trace["name"] == escaped
    assert trace["hovertemplate"] == "%{customdata}<extra></extra>"  # Plotly's markup, ours
    assert layout["xaxis"]["title"]["text"] == escaped and layout["yaxis"]["ticktext"] == [escaped]
    assert layout["annotations"][0]["text"] == escaped and layout["annotations"][0]["x"] == escaped
