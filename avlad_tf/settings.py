"""Settings: each configurable argument's role, and one way to record them
and compare two records.

Every gin-configurable function of the library is declared with
`configurable`, which names the role of each of its keyword arguments, next
to the function:

- `setting`: decides what the function computes (a trained model, a
  dataset's records). A run records it; a rerun that changes it is refused.
- `execution`: how the work runs, not what it computes (XLA, devices,
  checkpoint and log intervals, batch sizes of evaluation). A rerun may
  change it.
- `evaluation`: what is evaluated, fused or exported after training. A rerun
  may change it, and table rows that differ only here share one training
  run (`experiments/rows.py`).
- `call`: an object of the call (a directory, a model, a callback), never a
  gin binding: gin refuses to bind it (its `denylist`).

Every argument has exactly one role; a function whose arguments and roles
differ fails at import, and `tests/settings_test.py` checks every
configurable. `run_record` (run.json), `data_prep.resume` (a prepared
dataset's records) and `experiments.rows` (the table runner) record and
compare settings with the helpers below: atomic JSON files, flattened paths,
the differences, and the one line that names them.
"""

import inspect
import json

from avlad_tf import storage

ROLES = ("setting", "execution", "evaluation", "call")
# Roles a rerun may change: they do not decide what is computed.
CHANGEABLE = ("execution", "evaluation")
_DECLARED = {}  # configurable name -> {argument: role}


def configurable(*, setting=(), execution=(), evaluation=(), call=()):
    """Declares a function gin-configurable, with each argument's role.

    Returns:
        A decorator: `gin.configurable(denylist=call)` of the function, which
        also carries the roles as `roles` (`{argument: role}`).

    Raises:
        TypeError: at import, when the function's keyword arguments and the
            roles differ (an argument without a role, a role for no argument,
            an argument with two roles).
    """
    import gin  # pylint: disable=import-outside-toplevel

    declared = {"setting": setting, "execution": execution}
    declared.update(evaluation=evaluation, call=call)

    def decorate(fn):
        roles = check_roles(fn, declared)
        fn.roles = roles
        _DECLARED[fn.__name__] = roles
        return gin.configurable(denylist=list(call))(fn)

    return decorate


def check_roles(fn, declared):
    """`{argument: role}` of `fn`, or a TypeError naming what is amiss."""
    roles, twice = {}, []
    for role, names in declared.items():
        for name in names:
            if name in roles:
                twice.append(name)
            roles[name] = role
    arguments = [
        name
        for name, parameter in inspect.signature(fn).parameters.items()
        if parameter.kind is inspect.Parameter.KEYWORD_ONLY
    ]
    missing = [name for name in arguments if name not in roles]
    unknown = sorted(set(roles) - set(arguments))
    if missing or unknown or twice:
        raise TypeError(
            f"{fn.__module__}.{fn.__name__}: every keyword argument needs "
            f"exactly one role of {ROLES} (avlad_tf/settings.py); without a "
            f"role: {missing}, not an argument: {unknown}, two roles: {twice}."
        )
    return roles


def roles(name):
    """`{argument: role}` of the configurable called `name` ('train_stream'),
    or None when no imported module declares one of that name."""
    return _DECLARED.get(name)


def declared():
    """The names of every configurable declared so far."""
    return sorted(_DECLARED)


def role(name, argument):
    """The role of `name`'s `argument`; 'setting' for anything undeclared,
    so that what is not known is never taken as safe to change."""
    return (roles(name) or {}).get(argument, "setting")


# ---- Records --------------------------------------------------------------


def jsonable(value, *, default=None):
    """`value` as its JSON reading gives it back (tuples as lists), so that
    a record compares equal to the file it is written to. `default` turns
    what JSON cannot hold into something it can (as `json.dumps`)."""
    return json.loads(json.dumps(value, default=default))


def write_json(path, value, *, indent=2, sort_keys=False):
    """Writes `value` as JSON at `path` (local or a URL) atomically
    (`storage.replacing`)."""
    text = json.dumps(value, indent=indent, sort_keys=sort_keys)
    with storage.replacing(path) as tmp, storage.open_file(tmp, "w") as f:
        f.write(text)


def read_json(path):
    return json.loads(storage.read_text(path))


def flatten(value, prefix="", *, sep="/"):
    """`{"a/b": leaf}`: the path of every leaf of nested dicts (lists are
    leaves), its keys joined by `sep`."""
    if not isinstance(value, dict):
        return {prefix: value}
    flat = {}
    for key, item in value.items():
        flat.update(flatten(item, f"{prefix}{sep}{key}" if prefix else key, sep=sep))
    return flat


def differences(old, new, *, sep="/"):
    """`[(path, before, after)]` of every leaf of two records that differs,
    sorted by path (a leaf only one side has compares with None)."""
    old, new = flatten(old, sep=sep), flatten(new, sep=sep)
    return [
        (key, old.get(key), new.get(key))
        for key in sorted(set(old) | set(new))
        if old.get(key) != new.get(key)
    ]


def describe(changes, *, name=lambda key: key):
    """One line naming each change: `name(path): before -> after; ...`."""
    return "; ".join(
        f"{name(key)}: {before!r} -> {after!r}" for key, before, after in changes
    )
