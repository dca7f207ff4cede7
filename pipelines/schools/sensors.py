import dagster as dg

from pipelines.schools.assets import staged_school
from pipelines.schools.partitions import schools_partitions
from privacy.zones import Home
from transforms.intake import discover_schools


@dg.sensor(target=[staged_school], minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.STOPPED)
def landing_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult:
    """Add a school partition when its contract and first export appear; run schools whose landing changed."""
    home = Home.from_env()
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
