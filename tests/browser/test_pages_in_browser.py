"""The impact report and the funder dashboard, opened from file:// in Chromium as a reader would:
no console errors, no network, every chart drawn, filters that change charts, suppressed cells
labelled, readable at phone width. Screenshots go to the test's tmp folder."""

from __future__ import annotations

import pytest
from page_visit import DESKTOP, PHONE, open_page

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PAGES = ("impact_report.html", "funder_dashboard.html")


def chart_summary(page) -> list[dict]:
    return page.evaluate(
        """() => [...document.querySelectorAll('.plotly-graph-div')].map(d => ({
            id: d.id, traces: (d.data || []).length, drawn: !!d.querySelector('.main-svg'),
            title: (document.getElementById(d.id + '-title') || {}).textContent || '',
            alt: (d.closest('[role=img]').getAttribute('aria-label') || '')}))"""
    )


def trace_x(page, div_id: str) -> list:
    return page.evaluate(f"() => document.getElementById('{div_id}').data[0].x.slice()")


@pytest.mark.parametrize("name", PAGES)
def test_page_loads_offline_without_errors_and_draws_every_chart(browser, release_home, name, tmp_path):
    visit = open_page(browser, release_home.published / name)
    assert visit.console_errors == []
    assert visit.requests == []
    charts = chart_summary(visit.page)
    assert len(charts) >= (7 if name == "funder_dashboard.html" else 6)
    for chart in charts:
        assert chart["traces"] > 0 and chart["drawn"], chart
        assert chart["title"].strip() and len(chart["alt"]) > 20, chart
    visit.page.screenshot(path=tmp_path / f"{name}-{DESKTOP}.png", full_page=True)
    visit.page.close()


@pytest.mark.parametrize("name", PAGES)
def test_page_is_readable_at_phone_width(browser, release_home, name, tmp_path):
    visit = open_page(browser, release_home.published / name, width=PHONE)
    page_width, viewport = visit.page.evaluate(
        "() => [document.documentElement.scrollWidth, window.innerWidth]"
    )
    assert page_width <= viewport, "the page scrolls sideways on a phone (tables may scroll inside their box)"
    shot = tmp_path / f"{name}-{PHONE}.png"
    visit.page.screenshot(path=shot, full_page=True)
    assert shot.stat().st_size > 10_000
    visit.page.close()


def test_school_filter_redraws_charts_and_labels_suppressed_subgroups(browser, release_home):
    visit = open_page(browser, release_home.published / "funder_dashboard.html")
    page = visit.page
    before_resources = page.evaluate("() => document.getElementById('resource-usage').data[0].y.slice()")
    reached_all = page.text_content("#tile-reached .value")
    school = page.evaluate(
        """() => JSON.parse(document.getElementById('dashboard-data').textContent).reach
              .find(r => r.status === 'suppressed' && r.school_id !== 'ALL').school_id"""
    )
    page.select_option("#school-filter", school)
    after_resources = page.evaluate("() => document.getElementById('resource-usage').data[0].y.slice()")
    assert after_resources != before_resources
    assert page.text_content("#tile-reached .value") != reached_all
    assert school in page.text_content("#reach-subgroups-title")
    # suppressed subgroups: the table says so in words, the chart puts the word on the bar's place
    visible = page.locator("#subgroup-table tbody tr:not([hidden])")
    texts = [visible.nth(i).inner_text() for i in range(visible.count())]
    assert texts and all(school in t for t in texts)
    assert any(t.strip().endswith("suppressed") for t in texts)
    assert all(t.split("\t")[-1].strip() not in ("", "0", "0.0%") for t in texts)
    notes = page.evaluate(
        "() => (document.getElementById('reach-subgroups').layout.annotations || []).map(a => a.text)"
    )
    assert "suppressed" in notes
    # the forest plot highlights the chosen school
    colors = page.evaluate("() => document.getElementById('forest-0').data[0].marker.color")
    assert isinstance(colors, list) and len(set(colors)) == 2
    assert visit.console_errors == [] and visit.requests == []
    page.close()


def test_resource_and_term_filters_change_what_charts_show(browser, release_home):
    visit = open_page(browser, release_home.published / "funder_dashboard.html")
    page = visit.page
    resources = trace_x(page, "resource-usage")
    assert all(x.startswith("RES-") for x in resources)
    resource = page.eval_on_selector("#resource-filter", "s => s.options[1].value")
    page.select_option("#resource-filter", resource)
    schools = trace_x(page, "resource-usage")
    assert schools and all(x.startswith("sch") for x in schools)
    assert resource in page.text_content("#resource-usage-title")

    weeks_all = trace_x(page, "trend-active")
    terms = page.eval_on_selector_all("#term-filter option", "os => os.map(o => o.value)")
    assert len(terms) >= 3, "the test consortium spans two terms"
    page.select_option("#term-filter", terms[1])
    weeks_term = trace_x(page, "trend-active")
    assert 0 < len(weeks_term) < len(weeks_all)
    assert visit.console_errors == []
    page.close()


def test_filters_work_from_the_keyboard(browser, release_home):
    visit = open_page(browser, release_home.published / "funder_dashboard.html")
    page = visit.page
    page.focus("#school-filter")
    label = page.evaluate("() => document.querySelector('label[for=school-filter]').textContent")
    assert label.strip() == "School"
    outline = page.evaluate("() => getComputedStyle(document.activeElement).outlineStyle")
    assert outline != "none"  # focus is visible
    page.keyboard.press("ArrowDown")  # a focused <select> changes value with the arrow keys
    school = page.eval_on_selector("#school-filter", "s => s.value")
    assert school != "ALL"
    page.wait_for_function("() => (document.body.dataset.filtered || '').split('|')[0] !== 'ALL'")
    assert school in page.text_content("#resource-usage-title")
    page.close()


def test_impact_report_shows_forest_plots_with_pooled_estimate_and_suppression_list(browser, release_home):
    visit = open_page(browser, release_home.published / "impact_report.html")
    page = visit.page
    forest = page.evaluate("() => document.getElementById('forest-0').data.map(t => t.name)")
    assert forest[:2] == ["schools", "pooled"]
    assert "prediction" in " ".join(forest)
    heterogeneity = page.text_content("figure:has(#forest-0)")
    assert "τ²" in heterogeneity and "I²" in heterogeneity and "prediction interval" in heterogeneity
    assert page.locator(".suppressed-list li").count() > 0
    assert page.text_content("#min-cell-size").strip() == "10"
    page.close()


def test_impact_report_prints_to_pdf(release_home, tmp_path):
    from dashboards.render import chromium_path, write_pdf

    if chromium_path() is None:
        pytest.skip("no Chromium to print with")
    pdf = write_pdf(release_home.published / "impact_report.html", tmp_path / "impact_report.pdf")
    assert pdf is not None and pdf.read_bytes().startswith(b"%PDF")
    assert pdf.stat().st_size > 100_000  # the charts are in it, not just text
