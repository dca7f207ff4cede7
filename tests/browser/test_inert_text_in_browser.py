"""Hostile HTML in school ids, resource ids and categories, opened in Chromium: every chart shows it
as text (no link, no bold, no image), no script from the data runs, before and after the filters
redraw the charts with the page's own JavaScript."""

from __future__ import annotations

import pytest
from page_visit import open_page

pytestmark = [pytest.mark.browser, pytest.mark.slow]

# Whatever Plotly or the page made of the data inside the charts: links, images, bold text, scripts.
CHART_MARKUP = """() => {
    const charts = [...document.querySelectorAll('.plotly-graph-div')];
    const inCharts = sel => charts.flatMap(c => [...c.querySelectorAll(sel)]);
    return {
        links: inCharts('a').map(a => a.getAttribute('href') || a.getAttribute('xlink:href') || '')
                            .filter(h => h && !h.startsWith('#')),
        // Plotly draws a heatmap as an SVG <image> of a data: URI; anything else would be the data's
        images: [...document.querySelectorAll('img, image, iframe, object, embed')].filter(e =>
            !(e.tagName === 'image' && (e.getAttribute('href') || e.getAttribute('xlink:href') || '').startsWith('data:'))).length,
        scripts_from_data: [...document.scripts].filter(s => /alert\\(/.test(s.src || '')).length,
        bold: inCharts('tspan, text').filter(t => /bold/.test(t.textContent) &&
                                            (t.style.fontWeight === 'bold' || t.getAttribute('font-weight') === 'bold')).length,
        ticks: inCharts('.xtick text, .ytick text').map(t => t.textContent),
        xss: window.__xss || null,
    };
}"""


def open_hostile(browser, path):
    visit = open_page(browser, path)
    dialogs: list[str] = []

    def dismiss(dialog):
        dialogs.append(dialog.message)
        dialog.dismiss()

    visit.page.on("dialog", dismiss)
    visit.page.wait_for_timeout(300)  # an onerror handler would have fired by now
    return visit, dialogs


def assert_inert(page, dialogs):
    found = page.evaluate(CHART_MARKUP)
    assert found["links"] == [], f"a chart renders links from the data: {found['links']}"
    assert found["images"] == 0 and found["scripts_from_data"] == 0 and found["xss"] is None
    assert found["bold"] == 0, "a chart renders <b> from the data as bold text"
    assert dialogs == [], f"a script from the data ran: {dialogs}"
    return found["ticks"]


@pytest.mark.parametrize("name", ["impact_report.html", "funder_dashboard.html"])
def test_hostile_labels_are_drawn_as_text(browser, hostile_published, name):
    visit, dialogs = open_hostile(browser, hostile_published / name)
    ticks = assert_inert(visit.page, dialogs)
    # the forest plot's school labels (and on the dashboard the resources) show the markup as text
    assert any('<a href="https://evil.example">x</a>' in t for t in ticks), ticks
    assert any("<img src=x onerror=alert(1)>" in t for t in ticks), ticks
    assert visit.requests == []  # the <img src=x> and the evil.example link never load
    visit.page.close()


def test_filters_redraw_hostile_labels_as_text(browser, hostile_published):
    visit, dialogs = open_hostile(browser, hostile_published / "funder_dashboard.html")
    page = visit.page
    schools = page.eval_on_selector_all("#school-filter option", "os => os.map(o => o.value)")
    resources = page.eval_on_selector_all("#resource-filter option", "os => os.map(o => o.value)")
    hostile_school = next(s for s in schools if s.startswith("<img"))
    page.select_option("#school-filter", hostile_school)
    assert hostile_school in page.text_content("#resource-usage-title")  # a heading, as text
    assert_inert(page, dialogs)
    page.select_option("#resource-filter", next(r for r in resources if r.startswith("<a href")))
    ticks = assert_inert(page, dialogs)
    assert any(t.startswith("<") for t in ticks), ticks  # the schools on the axis, drawn as text
    assert visit.console_errors == [] and visit.requests == []
    page.close()
