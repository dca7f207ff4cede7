"""The additive cells of all tables together and the linear relations an attacker knows between them.

A cell's identity is its canonical key: the measure plus the dimensions that are not at their total
label (a total over a dimension is the same population as a table without that dimension). The same
key in two tables is one cell (linked tables); explicit `CellRef` pairs link cells with different keys.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property

import polars as pl

from privacy.suppression.spec import PUBLISHED, TableSpec

CellKey = tuple[str, tuple[tuple[str, str], ...]]  # (measure, ((dim, value), ...)) sorted by dim


@dataclass(frozen=True)
class CellRef:
    """One row of one table, named by its dimension values: for explicit links between tables."""

    table: str
    dims: Mapping[str, str]
    measure: str


@dataclass
class AdditiveCell:
    """One additive quantity (a count or a sum) that may appear in several tables."""

    key: CellKey
    is_count: bool
    value: float | None  # None when no table publishes it (audit view)
    n: int | None
    rows: list[tuple[str, int]] = field(default_factory=list)  # (table, row index)

    def label(self) -> str:
        return describe_key(self.key)


class _KeyUnion:
    """Union-find over cell keys; the smallest key represents its class (deterministic)."""

    def __init__(self) -> None:
        self.parent: dict[CellKey, CellKey] = {}

    def find(self, key: CellKey) -> CellKey:
        root = key
        while self.parent.get(root, root) != root:
            root = self.parent[root]
        while self.parent.get(key, key) != root:
            self.parent[key], key = root, self.parent[key]
        return root

    def union(self, a: CellKey, b: CellKey) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            lo, hi = sorted((ra, rb))
            self.parent[hi] = lo


@dataclass
class CellSystem:
    """All additive cells (sorted by key: a stable order for ties) and relations total = Σ children."""

    cells: list[AdditiveCell]
    index: dict[CellKey, int]
    relations: list[tuple[int, tuple[int, ...]]]
    union: _KeyUnion = field(repr=False)

    def cell_of(self, key: CellKey) -> int | None:
        """The cell a key names (after links), or None when no table has it."""
        return self.index.get(self.union.find(key))

    @cached_property
    def relations_of(self) -> list[list[int]]:
        """For each cell, the indices of the relations it takes part in (built once per system)."""
        member: list[list[int]] = [[] for _ in self.cells]
        for r, (total, children) in enumerate(self.relations):
            member[total].append(r)
            for c in children:
                member[c].append(r)
        return member


def describe_key(key: CellKey) -> str:
    measure, dims = key
    where = ", ".join(f"{d}={v}" for d, v in dims) or "total"
    return f"{measure}[{where}]"


def dim_text(value: object) -> str:
    return "∅" if value is None else str(value)


def canonical_key(spec: TableSpec, measure: str, dims: Mapping[str, object]) -> CellKey:
    """The measure plus the dimensions not at their total (nor made irrelevant by a nested total)."""
    at_total = {d for d, label in spec.totals.items() if dim_text(dims[d]) == label}
    irrelevant = {parent for child, parent in spec.nested.items() if child in at_total}
    kept = sorted((d, dim_text(dims[d])) for d in spec.dims if d not in at_total and d not in irrelevant)
    return (measure, tuple(kept))


def build_cell_system(
    tables: Mapping[str, pl.DataFrame],
    specs: Sequence[TableSpec],
    links: Sequence[tuple[CellRef, CellRef]] = (),
    *,
    published_only: bool = False,
) -> CellSystem:
    """Collect the additive cells of every table and the margin relations between them.

    With `published_only` (the attacker's view) a value is known only where some table publishes it.
    Otherwise every value is the true one and linked cells and margins must agree (ValueError if not).
    """
    union = _KeyUnion()
    for left, right in links:
        union.union(_ref_key(left, specs), _ref_key(right, specs))

    cells: list[AdditiveCell] = []
    index: dict[CellKey, int] = {}
    row_cell: dict[tuple[str, int], int] = {}
    for spec in sorted(specs, key=lambda s: s.name):
        frame = tables[spec.name]
        additive = set(spec.additive_measures)
        columns = {c: frame[c].to_list() for c in (*spec.dims, "measure", "value", "n", "status")}
        for i, measure in enumerate(columns["measure"]):
            if measure not in additive:
                continue
            key = union.find(canonical_key(spec, measure, {d: columns[d][i] for d in spec.dims}))
            visible = not published_only or columns["status"][i] == PUBLISHED
            value = columns["value"][i] if visible else None
            n = columns["n"][i] if visible else None
            if key not in index:
                index[key] = len(cells)
                cells.append(AdditiveCell(key, measure in spec.count_measures, value, n))
            cell = cells[index[key]]
            _merge_value(cell, value, n, spec.name, published_only)
            cell.rows.append((spec.name, i))
            row_cell[(spec.name, i)] = index[key]

    order = sorted(range(len(cells)), key=lambda c: cells[c].key)
    renumber = {old: new for new, old in enumerate(order)}
    cells = [cells[old] for old in order]
    index = {cell.key: i for i, cell in enumerate(cells)}
    rows = {k: renumber[v] for k, v in row_cell.items()}
    relations = _margin_relations(tables, specs, rows, lambda key: index.get(union.find(key)))
    if not published_only:
        _check_margins_add_up(cells, relations)
    return CellSystem(cells, index, relations, union)


def _ref_key(ref: CellRef, specs: Sequence[TableSpec]) -> CellKey:
    spec = next((s for s in specs if s.name == ref.table), None)
    if spec is None:
        raise ValueError(f"link names unknown table {ref.table!r}")
    return canonical_key(spec, ref.measure, ref.dims)


def _merge_value(cell: AdditiveCell, value: float | None, n: int | None, table: str, lenient: bool) -> None:
    if value is None:
        return
    if cell.value is None:
        cell.value, cell.n = float(value), n
    elif abs(cell.value - value) > 1e-6 * max(1.0, abs(value)) and not lenient:
        raise ValueError(f"linked cell {cell.label()} is {cell.value} elsewhere but {value} in {table!r}")


def _margin_relations(
    tables: Mapping[str, pl.DataFrame],
    specs: Sequence[TableSpec],
    row_cell: Mapping[tuple[str, int], int],
    cell_of: Callable[[CellKey], int | None],
) -> list[tuple[int, tuple[int, ...]]]:
    """total = Σ children along every dimension with a total label, deduplicated across tables.

    The total may live in another table (a consortium table holding the "ALL" row of a per-school
    table): it is found by its canonical key.
    """
    relations: set[tuple[int, tuple[int, ...]]] = set()
    for spec in specs:
        frame = tables[spec.name]
        columns = {c: frame[c].to_list() for c in (*spec.dims, "measure")}
        additive = set(spec.additive_measures)
        for dim, label in spec.totals.items():
            others = [d for d in spec.dims if d != dim]
            groups: dict[tuple, list[int]] = defaultdict(list)
            total_keys: dict[tuple, CellKey] = {}
            holds_for = set(spec.margin_measures.get(dim, additive))
            for i, measure in enumerate(columns["measure"]):
                if measure not in additive or measure not in holds_for or dim_text(columns[dim][i]) == label:
                    continue
                group = (measure, *(dim_text(columns[d][i]) for d in others))
                groups[group].append(row_cell[(spec.name, i)])
                if group not in total_keys:
                    dims = {d: columns[d][i] for d in others} | {dim: label}
                    total_keys[group] = canonical_key(spec, measure, dims)
            for group, children in groups.items():
                total = cell_of(total_keys[group])
                members = tuple(sorted(set(children) - {total}))
                if total is not None and members:
                    relations.add((total, members))
        relations.update(_row_sum_relations(spec, columns, row_cell))
    return sorted(relations)


def _row_sum_relations(
    spec: TableSpec, columns: Mapping[str, list], row_cell: Mapping[tuple[str, int], int]
) -> set[tuple[int, tuple[int, ...]]]:
    """total = Σ parts between measures of the same row (same dims), e.g. students = users + non_users."""
    relations: set[tuple[int, tuple[int, ...]]] = set()
    for total_measure, parts in spec.row_sums.items():
        wanted = {total_measure, *parts}
        by_dims: dict[tuple, dict[str, int]] = defaultdict(dict)
        for i, measure in enumerate(columns["measure"]):
            if measure in wanted:
                by_dims[tuple(dim_text(columns[d][i]) for d in spec.dims)][measure] = row_cell[(spec.name, i)]
        for cells in by_dims.values():
            if wanted <= cells.keys():
                members = tuple(sorted({cells[p] for p in parts} - {cells[total_measure]}))
                relations.add((cells[total_measure], members))
    return relations


def _check_margins_add_up(cells: Sequence[AdditiveCell], relations: Sequence[tuple[int, tuple[int, ...]]]):
    for total, children in relations:
        expected = cells[total].value or 0.0
        found = sum(cells[c].value or 0.0 for c in children)
        if abs(expected - found) > 1e-6 * max(1.0, abs(expected)):
            raise ValueError(
                f"{cells[total].label()} is {expected} but its parts add up to {found}: "
                "margins must be exact (add an explicit 'unknown' category)"
            )
