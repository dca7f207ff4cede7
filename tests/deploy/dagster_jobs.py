"""Jobs over the pipeline's own assets with the multiprocess executor, loadable by file so each
step's subprocess can rebuild them (`ReconstructableJob.for_file`)."""

from __future__ import annotations

import dagster as dg

from pipelines.consortium.assets import published_release, reports
from pipelines.resources import default_resources
from pipelines.schools.assets import staged_school
from pipelines.schools.partitions import schools_partitions

SCHOOL_JOB = "stage_school_job"
RELEASE_JOB = "release_job"


def definitions() -> dg.Definitions:
    return dg.Definitions(
        assets=[staged_school, published_release, reports],
        jobs=[
            dg.define_asset_job(
                SCHOOL_JOB,
                selection=[staged_school],
                partitions_def=schools_partitions,
                executor_def=dg.multiprocess_executor,
            ),
            dg.define_asset_job(
                RELEASE_JOB, selection=[published_release, reports], executor_def=dg.multiprocess_executor
            ),
        ],
        resources=default_resources(),
    )


def stage_school_job() -> dg.JobDefinition:
    return definitions().resolve_job_def(SCHOOL_JOB)


def release_job() -> dg.JobDefinition:
    return definitions().resolve_job_def(RELEASE_JOB)
