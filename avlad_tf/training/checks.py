"""Settings checked before any slow work (k-means, training) starts.

Each check reads the run's record (`run_record`) and fails with one line
that names the binding as `<stream>/<configurable>.<argument>`, its value and
what it must be, instead of an error from deep inside TensorFlow after
minutes of k-means.
"""

from avlad_tf.models import aggregators


def _positive_int(value):
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _per_stage(value, check):
    """An int for every stage, or one per stage."""
    values = value if isinstance(value, (list, tuple)) else [value]
    return bool(values) and all(check(v) for v in values)


def _fail(stream, binding, value, what):
    raise ValueError(f"{stream}/{binding} = {value!r}: {what}.")


def _check_training(stream, training):
    steps = training["train_stream"]
    for name in ("batch_size", "accumulation_steps"):
        if not _per_stage(steps[name], _positive_int):
            _fail(
                stream,
                f"train_stream.{name}",
                steps[name],
                "must be a positive integer, or one per stage",
            )
    if not _positive_int(steps["kmeans_batch_size"]):
        _fail(
            stream,
            "train_stream.kmeans_batch_size",
            steps["kmeans_batch_size"],
            "must be a positive integer",
        )
    stage_steps, rates = steps["stage_steps"], steps["learning_rates"]
    if not (
        isinstance(stage_steps, list)
        and stage_steps
        # bool is an int to Python, never a number of updates to a user.
        and all(
            isinstance(s, int) and not isinstance(s, bool) and s >= 0
            for s in stage_steps
        )
    ):
        _fail(
            stream,
            "train_stream.stage_steps",
            stage_steps,
            "must be one non-negative number of updates per stage",
        )
    if not (
        isinstance(rates, list)
        and len(rates) == len(stage_steps)
        and all(
            isinstance(r, (int, float)) and not isinstance(r, bool) and r > 0
            for r in rates
        )
    ):
        _fail(
            stream,
            "train_stream.learning_rates",
            rates,
            f"must be one positive rate per stage ({len(stage_steps)})",
        )
    model = training["build_model"]
    clustered = model["pooling"] in aggregators.AGGREGATORS and (
        aggregators.get(model["pooling"]).clusters
    )
    if clustered and not _positive_int(model["num_clusters"]):
        _fail(
            stream,
            "build_model.num_clusters",
            model["num_clusters"],
            "must be a positive integer (K action words)",
        )
    kmeans = training["init_centers"]
    for name in ("num_random_frames", "num_init"):
        if not _positive_int(kmeans[name]):
            _fail(
                stream,
                f"init_centers.{name}",
                kmeans[name],
                "must be a positive integer",
            )


def _check_input(stream, settings):
    for name in ("num_frames", "flow_stack", "image_size"):
        if not _positive_int(settings[name]):
            _fail(
                stream,
                f"make_dataset.{name}",
                settings[name],
                "must be a positive integer",
            )


def check_record(record, info):
    """Raises ValueError on the first setting a run cannot train with.

    Args:
        record: the run's record (`run_record.build`).
        info: the dataset's checked metadata.
    """
    splits = info["splits"]
    data_dir = record["data"]["data_dir"]
    for stream, entry in record["streams"].items():
        _check_training(stream, entry["training"])
        _check_input(stream, entry["input"])
        split = entry["train_split"]
        if split not in splits:
            _fail(
                stream,
                "train_stream.train_split",
                split,
                f"{data_dir} has the splits {sorted(splits)}",
            )
        if not splits[split]["num_records"]:
            _fail(
                stream,
                "train_stream.train_split",
                split,
                f"{data_dir} holds no video of it (see its report.json)",
            )
    split = record["data"]["evaluate_split"]
    if split is not None and split not in splits:
        raise ValueError(
            f"train.evaluate_split = {split!r}: {data_dir} has "
            f"the splits {sorted(splits)}."
        )
