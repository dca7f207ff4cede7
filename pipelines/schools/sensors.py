import dagster as dg

from pipelines.schools.assets import staged_school
from pipelines.schools.partitions import schools_partitions
from privacy.zones import Home
from storage import object_store
from transforms.intake import discover_schools

# Dagster ends a sensor evaluation after 60 s by default: stop starting downloads well before.
INBOX_SECONDS_PER_TICK = 30.0


def pull_inbox_for_sensor(context: dg.SensorEvaluationContext, home: Home) -> None:
    """Under the daemon, exports waiting in the object-storage inbox (`IMPACT_INBOX_URL`) move into
    landing/ here, so the listing below sees them this tick; `impact run` does the same itself. An
    unreachable bucket is logged and the tick goes on with what landing holds."""
    try:
        report = object_store.pull_configured_inbox(
            home, "landing-sensor", time_budget=INBOX_SECONDS_PER_TICK
        )
    except object_store.ObjectStoreError as exc:
        context.log.warning(f"inbox: {exc}")
        return
    if report is None:
        return
    if report.busy:
        context.log.info("inbox: another process is moving it; this tick lists landing as it is")
    if report.deferred:
        context.log.info(f"inbox: {report.deferred} object(s) left for the next tick (time budget)")
    if report.moved:
        context.log.info(f"moved {len(report.moved)} export(s) from the inbox into landing/")
    for key, why in report.left.items():
        context.log.warning(f"left in the inbox: {object_store.public_key(key)}: {why}")


@dg.sensor(target=[staged_school], minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.STOPPED)
def landing_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult:
    """Add a school partition when its contract and first export appear; run schools whose landing changed."""
    home = Home.from_env()
    pull_inbox_for_sensor(context, home)
    known = set(context.instance.get_dynamic_partitions(schools_partitions.name))
    schools = discover_schools(home)
    new = sorted(set(schools) - known)
    # The cursor remembers each school's landing listing (names and sizes, no contents).
    seen = dict(item.split("=", 1) for item in (context.cursor or "").split(";") if "=" in item)
    requests = []
    for school_id, listing in sorted(schools.items()):
        if seen.get(school_id) != listing:
            requests.append(dg.RunRequest(partition_key=school_id, run_key=f"{school_id}:{listing}"))
            seen[school_id] = listing
    return dg.SensorResult(
        run_requests=requests,
        dynamic_partitions_requests=[schools_partitions.build_add_request(new)] if new else [],
        cursor=";".join(f"{k}={v}" for k, v in sorted(seen.items())),
    )
