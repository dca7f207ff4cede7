"""One school's exports → minimized, pseudonymized staging frames (the privacy boundary).

Order matters: the roster is read first because every other dataset links to students through it
(by local ID or email); then every frame keeps only what its contract declares, generalized, with
the linkage key replaced by `student_pid`. Raw identifiers exist only inside this function's frames.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import polars as pl

from contracts.model import Agreement, DatasetTerms
from contracts.requirements import NEEDS, link_column, scrubbed_fields, staging_problems
from privacy import optouts
from privacy.files import file_sha256
from privacy.kanonymity import k_anonymize, quasi_identifier_columns
from privacy.keys import PseudonymKey
from privacy.minimize import minimized_columns, recode_rare
from privacy.pseudonymize import TEACHER_PURPOSE, add_pseudonyms, linkage_value, normalized
from transforms.readers import ROW, ExportError, ReadResult, export_date, read_export
from transforms.row_checks import RefuseLabels, reject_bad_labels, reject_foreign_catalogue_rows

STAGING_DATASETS = (
    "students", "usage", "assessments", "attendance", "comments", "resources", "teacher_survey"
)  # fmt: skip
# Linkage, consent and name columns are consumed (contracts.requirements: `consumed`): they never
# reach staging in any form but the pid.
TEACHER_LINKAGE = "teacher_id"


@dataclass
class FileReport:
    """What happened to one received file; counts and names only, never values."""

    school_id: str
    dataset: str
    file: str
    sha256: str
    rows_in: int = 0
    rows_staged: int = 0
    status: str = "accepted"  # accepted | rejected_rows | failed | superseded | not_linked
    message: str = ""
    rejects: list[dict] = field(default_factory=list)
    dropped_columns: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass
class SchoolStaging:
    school_id: str
    frames: dict[str, pl.DataFrame] = field(default_factory=dict)
    files: list[FileReport] = field(default_factory=list)
    pii_findings: Counter = field(default_factory=Counter)
    recoded: dict[str, list[str]] = field(default_factory=dict)
    opt_outs: list[dict] = field(default_factory=list)  # counts per (scope, date): privacy.optouts
    k_anonymity: dict = field(default_factory=dict)  # KAnonymityReport.as_dict(): rules and counts
    leaving_all: pl.Series = field(default_factory=lambda: pl.Series("student_pid", [], dtype=pl.String))
    key_version: str = ""


file_digest = file_sha256  # the name intake and its tests use


def _count_rejects(report: FileReport, result: ReadResult, extra: Counter | None = None) -> None:
    report.rows_in = result.rows_in
    report.dropped_columns = result.dropped_columns
    report.rejects = result.reject_summary()
    for (f, reason), n in (extra or {}).items():
        report.rejects.append({"field": f, "reason": reason, "rows": n, "first_row": None})
    if report.rejects:
        report.status = "rejected_rows"


def _link(frame: pl.DataFrame, ids: pl.DataFrame, by: str) -> tuple[pl.DataFrame, int]:
    """Attach student_pid via the roster's map `ids` (key, student_pid); unmatched rows are dropped."""
    keyed = frame.with_columns(normalized(pl.col(by)).alias("__key"))
    linked = keyed.join(ids, on="__key", how="inner").drop("__key")
    return linked, frame.height - linked.height


def _note_first_unmatched(report: FileReport, frame: pl.DataFrame, ids: pl.DataFrame | None, by: str) -> None:
    """Name the first row whose student is not in the roster (its row number, never its value)."""
    entry = next((r for r in report.rejects if r["reason"] == "student not in roster"), None)
    if entry is None or ROW not in frame.columns:
        return
    keyed = frame.select(ROW, normalized(pl.col(by)).alias("__key"))
    missing = keyed if ids is None else keyed.join(ids, on="__key", how="anti")
    entry["first_row"] = int(missing[ROW].min()) if missing.height else None


def roster_linkage(
    roster: pl.DataFrame, school_id: str, terms: DatasetTerms, key: PseudonymKey
) -> pl.DataFrame:
    """Roster rows with their student_pid (HMAC of the shared key when declared, else school-local)."""
    shared = terms.field("state_id")
    has_shared = shared is not None and shared.privacy_class == "linkage_key"
    state = pl.col("state_id") if has_shared else pl.lit(None, dtype=pl.String)
    with_link = roster.with_columns(
        linkage_value(school_id, has_shared, pl.col("student_id"), state).alias("__link")
    )
    return add_pseudonyms(with_link, pl.col("__link"), key).drop("__link")


def _id_maps(roster: pl.DataFrame) -> dict[str, pl.DataFrame]:
    maps = {"student_id": roster.select(normalized(pl.col("student_id")).alias("__key"), "student_pid")}
    if "email" in roster.columns:
        maps["student_email"] = (
            roster.filter(pl.col("email").is_not_null())
            .select(normalized(pl.col("email")).alias("__key"), "student_pid")
            .unique("__key", keep="first")
        )
    return maps


def _dedupe_unique(frame: pl.DataFrame, terms: DatasetTerms) -> tuple[pl.DataFrame, Counter]:
    rejected: Counter = Counter()
    for f in terms.fields:
        if f.unique and f.name in frame.columns:
            before = frame.height
            frame = frame.unique(subset=[f.name], keep="first", maintain_order=True)
            if frame.height < before:
                rejected[(f.name, "duplicate of an earlier row")] += before - frame.height
    return frame, rejected


def _assessments_wide(frame: pl.DataFrame) -> pl.DataFrame:
    """One row per student: the latest pre and post score (a retake replaces the earlier one)."""
    order = ["assessed_on"] if "assessed_on" in frame.columns else [ROW]
    latest = frame.sort(order).group_by("student_pid", "term", maintain_order=True).last()
    wide = latest.group_by("student_pid", maintain_order=True).agg(
        pl.col("score").filter(pl.col("term") == "pre").first().alias("pre_score"),
        pl.col("score").filter(pl.col("term") == "post").first().alias("post_score"),
    )
    return wide.sort("student_pid")


def stage_teacher_survey(
    school_id: str, terms: DatasetTerms, result: ReadResult, key: PseudonymKey, reference: date
) -> pl.DataFrame:
    """The optional teacher survey: teacher_id → teacher_pid (HMAC under the teacher purpose key,
    mixed with the school id), responded_on → week. Teachers are not on the student roster, so
    nothing is linked; a row without a teacher id is dropped (it could not be counted once)."""
    frame = result.frame.filter(pl.col(TEACHER_LINKAGE).is_not_null())
    link = pl.lit(f"teacher:{school_id}:") + pl.col(TEACHER_LINKAGE).cast(pl.String).str.strip_chars()
    frame = frame.with_columns(link.alias("__link"))
    frame = add_pseudonyms(frame, pl.col("__link"), key, out="teacher_pid", purpose=TEACHER_PURPOSE)
    staged = frame.select(
        pl.lit(school_id).alias("school_id"),
        "teacher_pid",
        "key_version",
        *_staged_columns("teacher_survey", terms, reference),
    )
    return staged.sort(staged.columns, nulls_last=True)


def _staged_columns(dataset: str, terms: DatasetTerms, reference: date) -> list[pl.Expr]:
    """What the contract lets through (minimized), and its free text still to be scrubbed."""
    scrubbed = [f.name for f in scrubbed_fields(dataset, terms)]
    consumed = {c.name for c in NEEDS[dataset].columns if c.consumed}
    return [*minimized_columns(terms, reference, consumed | set(scrubbed)), *map(pl.col, scrubbed)]


def _scrub(dataset: str, terms: DatasetTerms, frame: pl.DataFrame, scrub, out: SchoolStaging) -> pl.DataFrame:
    for f in scrubbed_fields(dataset, terms):
        if f.name in frame.columns:
            scrubbed, findings = scrub(frame[f.name])
            frame = frame.with_columns(scrubbed.alias(f.name))
            out.pii_findings.update(findings)
    return frame


def _readable(
    school_id: str, agreement: Agreement, exports: dict[str, Path], reports: dict[str, FileReport], kwargs
) -> dict[str, ReadResult]:
    """Each export read as its contract says; one that cannot be is reported failed, with why."""
    reads: dict[str, ReadResult] = {}
    for ds, path in sorted(exports.items()):
        terms = agreement.datasets[ds]
        unmet = staging_problems(ds, terms, agreement.datasets)
        if unmet:
            _where, message, fix = unmet[0]
            reports[ds].status = "failed"
            reports[
                ds
            ].message = f"{path.name}: the contract's terms cannot be staged: {message} (fix: {fix})"
            continue
        try:
            reads[ds] = read_export(path, terms, **kwargs)
        except ExportError as exc:
            reports[ds].status, reports[ds].message = "failed", str(exc)
    return reads


def _checked(
    school_id: str,
    agreement: Agreement,
    exports: dict[str, Path],
    reads: dict[str, ReadResult],
    reports: dict[str, FileReport],
    refuse_labels: RefuseLabels,
    reference: date,
    consortium: frozenset[str],
) -> dict[str, ReadResult]:
    """The reads without the rows holding a value that may not reach an output (row_checks)."""
    checked = {}
    for ds, result in reads.items():
        try:
            if ds == "resources":
                reject_foreign_catalogue_rows(result, school_id, consortium)
            reject_bad_labels(exports[ds].name, ds, agreement.datasets[ds], result, refuse_labels, reference)
            checked[ds] = result
        except ExportError as exc:
            reports[ds].status, reports[ds].message = "failed", str(exc)
    return checked


def _teacher_names(reads: dict[str, ReadResult]) -> list[str]:
    """Teachers name each other in comments: their names join the roster's in the vocabulary."""
    frame = reads["comments"].frame if "comments" in reads else None
    if frame is None or "teacher_name" not in frame.columns:
        return []
    return frame["teacher_name"].drop_nulls().unique().sort().to_list()


def stage_school(
    school_id: str,
    agreement: Agreement,
    exports: dict[str, Path],
    key: PseudonymKey,
    scrub_texts,
    reference: date | None = None,
    max_bytes: int | None = None,
    consortium: frozenset[str] | None = None,
    label_checker=None,
) -> SchoolStaging:
    """Stage one school's latest export of each dataset.

    `scrub_texts(texts: pl.Series, roster: pl.DataFrame, teacher_names) -> (pl.Series, Counter)` replaces names,
    emails, phones and IDs in free text; it is passed in so this function stays testable without Presidio.
    `label_checker(roster, teacher_names)` gives the function that refuses labels (by default
    privacy.freetext.labels.LabelChecker); `consortium` is the school ids a catalogue may name.
    """
    reference = reference or agreement.end
    out = SchoolStaging(school_id)
    kwargs = {"max_bytes": max_bytes} if max_bytes else {}
    reports = {
        ds: FileReport(school_id, ds, path.name, file_digest(path)) for ds, path in sorted(exports.items())
    }
    out.files = list(reports.values())
    reads = _readable(school_id, agreement, exports, reports, kwargs)
    roster_read = reads["roster"].frame if "roster" in reads else None
    teachers = _teacher_names(reads)
    refuse_labels = (label_checker or _default_label_checker)(roster_read, teachers)
    reads = _checked(
        school_id,
        agreement,
        exports,
        reads,
        reports,
        refuse_labels,
        reference,
        consortium or frozenset({school_id}),
    )
    roster_for_scrub = roster_read if roster_read is not None else pl.DataFrame()

    def scrub(texts: pl.Series):
        return scrub_texts(texts, roster_for_scrub, teachers)

    if "teacher_survey" in reads:  # needs no roster: teachers are not students
        result = reads.pop("teacher_survey")
        _count_rejects(reports["teacher_survey"], result)
        terms = agreement.datasets["teacher_survey"]
        frame = stage_teacher_survey(school_id, terms, result, key, reference)
        out.frames["teacher_survey"] = _scrub("teacher_survey", terms, frame, scrub, out)
        reports["teacher_survey"].rows_staged = out.frames["teacher_survey"].height

    if "roster" not in reads:
        for ds, report in reports.items():
            if report.status != "failed" and ds != "teacher_survey":
                report.status, report.message = "not_linked", "no readable roster to link students to"
        return out

    roster_terms = agreement.datasets["roster"]
    roster, dupes = _dedupe_unique(reads["roster"].frame, roster_terms)
    _count_rejects(reports["roster"], reads["roster"], dupes)
    roster = roster_linkage(roster, school_id, roster_terms, key)
    maps = _id_maps(roster)
    opted = _opt_outs(agreement, roster, reads, reports, maps, exports)

    students = optouts.without_students(roster, opted.leaving_all).select(
        pl.lit(school_id).alias("school_id"),
        "student_pid",
        "key_version",
        *_staged_columns("roster", roster_terms, reference),
    )
    students = _scrub("roster", roster_terms, students, scrub, out)
    quasi = [c for c in ("sex", "postcode_district", "age_band") if c in students.columns]
    students, out.recoded = recode_rare(students, quasi, agreement.min_cell_size)
    qis = quasi_identifier_columns(roster_terms)
    students, k_report = k_anonymize(students, qis, agreement.min_cell_size)
    out.k_anonymity = k_report.as_dict()
    out.frames["students"] = students.sort("student_pid")
    reports["roster"].rows_staged = students.height

    for ds in ("usage", "assessments", "attendance", "comments"):
        if ds not in reads:
            continue
        terms, result = agreement.datasets[ds], reads[ds]
        by = link_column(ds, terms)
        linked, unmatched = (
            _link(result.frame, maps[by], by) if by in maps else (result.frame.head(0), result.frame.height)
        )
        extra = Counter({(by, "student not in roster"): unmatched} if unmatched else {})
        _count_rejects(reports[ds], result, extra)
        _note_first_unmatched(reports[ds], result.frame, maps.get(by), by)
        keys = (pl.lit(school_id).alias("school_id"), "student_pid", pl.lit(key.version).alias("key_version"))
        if ds == "assessments":
            order = [pl.col("assessed_on")] if "assessed_on" in linked.columns else []
            scores = linked.select(ROW, "student_pid", pl.col("term").str.to_lowercase(), "score", *order)
            frame = _assessments_wide(scores).select(*keys, "pre_score", "post_score")
        else:
            frame = _scrub(
                ds, terms, linked.select(*keys, *_staged_columns(ds, terms, reference)), scrub, out
            )
        if ds == "usage":
            frame = frame.sort("student_pid", "week", "resource_id", "minutes")
        out.frames[ds] = frame
        reports[ds].rows_staged = frame.height

    if "resources" in reads:
        terms = agreement.datasets["resources"]
        _count_rejects(reports["resources"], reads["resources"])
        frame = reads["resources"].frame.select(*_staged_columns("resources", terms, reference))
        out.frames["resources"] = _scrub("resources", terms, frame, scrub, out).sort("resource_id")
        reports["resources"].rows_staged = out.frames["resources"].height
    out.frames = optouts.apply(out.frames, opted)
    out.opt_outs = opted.summary()
    out.leaving_all = opted.leaving_all
    out.key_version = key.version
    for ds in ("usage", "assessments", "attendance", "comments"):
        if ds in out.frames:
            reports[ds].rows_staged = out.frames[ds].height
    return out


def _default_label_checker(roster: pl.DataFrame | None, teachers: list[str]) -> RefuseLabels:
    from privacy.freetext.labels import LabelChecker  # Presidio loads lazily: ~1 s

    return LabelChecker.from_roster(roster, teachers).refused


def _opt_outs(
    agreement: Agreement,
    roster: pl.DataFrame,
    reads: dict[str, ReadResult],
    reports: dict[str, FileReport],
    maps: dict[str, pl.DataFrame],
    exports: dict[str, Path],
) -> optouts.OptOuts:
    """The school's opt-outs from its roster flag and its `opt_outs` export (linked like usage)."""
    from_roster = optouts.from_roster(roster, export_date(exports["roster"]))
    if "opt_outs" not in reads:
        return from_roster
    terms, result = agreement.datasets["opt_outs"], reads["opt_outs"]
    by = link_column("opt_outs", terms)
    linked, unmatched = _link(result.frame, maps[by], by) if by in maps else (result.frame.head(0), 0)
    _count_rejects(
        reports["opt_outs"], result, Counter({(by, "student not in roster"): unmatched} if unmatched else {})
    )
    from_file = optouts.from_dataset(linked, export_date(exports["opt_outs"]))
    reports["opt_outs"].rows_staged = linked.height  # applied here; the file itself is never staged
    return optouts.combined(from_roster, from_file)
