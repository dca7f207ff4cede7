import dagster as dg

from pipelines.schools.partitions import schools_partitions
from pipelines.schools.sensors import landing_sensor


def test_landing_sensor_adds_schools_and_requests_changed_ones(tiny_home, monkeypatch):
    monkeypatch.setenv("IMPACT_HOME", str(tiny_home.root))
    instance = dg.DagsterInstance.ephemeral()
    first = landing_sensor(dg.build_sensor_context(instance=instance))
    (add,) = first.dynamic_partitions_requests
    assert sorted(add.partition_keys) == ["sch01", "sch02", "sch03"]
    assert sorted(r.partition_key for r in first.run_requests) == ["sch01", "sch02", "sch03"]
    instance.add_dynamic_partitions(schools_partitions.name, list(add.partition_keys))

    quiet = landing_sensor(dg.build_sensor_context(instance=instance, cursor=first.cursor))
    assert quiet.run_requests == [] and quiet.dynamic_partitions_requests == []

    new_export = tiny_home.landing / "sch02" / "usage" / "usage_2027-06-30.csv"
    new_export.write_text("student_id,resource_id\n")
    changed = landing_sensor(dg.build_sensor_context(instance=instance, cursor=first.cursor))
    assert [r.partition_key for r in changed.run_requests] == ["sch02"]
