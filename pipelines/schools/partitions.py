import dagster as dg

# A school becomes a partition when its contract and first export appear (the landing sensor, or
# `impact run`, adds it).
schools_partitions = dg.DynamicPartitionsDefinition(name="schools")
