"""Scenario descriptions: dataclasses, TOML files and the built-in scenarios.

A scenario is plain data: who is where and when (places with schedules), who
runs the app, who is infected, which phones, which radio, which protocol
timings. ``load_scenario`` accepts a built-in name or a path to a TOML file;
``apply_overrides`` applies ``--set key=value`` strings; ``scenario_to_toml``
writes a scenario back so that files and built-ins round-trip.

Built-in scenarios live in ``bluetrace/sim/scenarios/*.toml``.
"""

from __future__ import annotations

import dataclasses
import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from bluetrace.sim.profiles import PhoneProfile, normalise_settings, resolve_profiles
from bluetrace.sim.radio import MODEL_OFFSET_SCHEMES, PRESETS
from bluetrace.sim.rules import contact_rules
from bluetrace.sim.text import printable
from bluetrace.sim.units import DAY

SCENARIO_DIR: Final = Path(__file__).with_name("scenarios")
PLACE_KINDS: Final = ("room", "tram", "bus", "open")
MAX_DAYS: Final = 4000  # pair-day keys hold the day in 12 bits
MAX_POPULATION: Final = 10_000_000
MAX_PER_PLACE: Final = 5000  # people in one place instance (pairs grow as its square)


class ScenarioError(ValueError):
    """A scenario that cannot be built; the message is one line for the user."""


@dataclass
class PlaceSpec:
    """One kind of place, repeated ``count`` times, each with ``per_place`` people.

    room: ``rows`` x ``cols`` desks ``pitch`` m apart; each occupant keeps a desk
    and is present from ``start`` to ``end`` (hours) each day, each end moved by
    up to +-``jitter`` minutes, on a day with probability ``attendance``.
    tram / bus: ``rows`` x ``cols`` seats; ``trips`` trips a day spread evenly
    between ``start`` and ``end``, each ``trip_minutes`` long, carrying
    ``riders`` of the occupants in random seats for the whole trip.
    open: an ``area`` m square in which the occupants walk (random waypoint,
    ``speed`` m/s, ``pause`` s) from ``start`` to ``end``, sampled every ``step`` s.
    """

    name: str
    kind: str = "room"
    count: int = 1
    per_place: int = 10
    rows: int = 2
    cols: int = 5
    pitch: float = 2.0
    start: float = 9.0
    end: float = 17.0
    jitter: float = 0.0
    attendance: float = 1.0
    trips: int = 1
    trip_minutes: float = 15.0
    riders: int = 0
    area: float = 1500.0
    speed: tuple[float, float] = (0.5, 1.5)
    pause: tuple[float, float] = (0.0, 120.0)
    step: float = 10.0
    radio: str = "open"

    def check(self) -> None:
        """Raise ScenarioError on values the world cannot build."""
        where = f"place {self.name!r}"
        if self.kind not in PLACE_KINDS:
            raise ScenarioError(f"{where}: kind must be one of {', '.join(PLACE_KINDS)}")
        if self.count < 1 or self.per_place < 1:
            raise ScenarioError(f"{where}: count and per_place must be >= 1")
        if self.per_place > MAX_PER_PLACE:
            raise ScenarioError(f"{where}: at most {MAX_PER_PLACE} people in one place")
        if not 0.0 <= self.jitter <= 12 * 60.0:
            raise ScenarioError(f"{where}: jitter must be 0 to 720 minutes")
        if self.rows < 1 or self.cols < 1 or self.rows * self.cols > 4 * MAX_PER_PLACE:
            raise ScenarioError(f"{where}: rows and cols must be >= 1 (at most "
                                f"{4 * MAX_PER_PLACE} seats)")
        if self.radio not in PRESETS:
            raise ScenarioError(f"{where}: radio must be one of {', '.join(PRESETS)}")
        if not 0.0 <= self.start < self.end <= 24.0:
            raise ScenarioError(f"{where}: need 0 <= start < end <= 24 (hours)")
        if not 0.0 <= self.attendance <= 1.0:
            raise ScenarioError(f"{where}: attendance must be in [0, 1]")
        seats = self.rows * self.cols
        if self.kind == "room" and self.per_place > seats:
            raise ScenarioError(f"{where}: {self.per_place} people do not fit {seats} desks")
        if self.kind in ("tram", "bus"):
            if self.riders < 1 or self.riders > min(seats, self.per_place):
                raise ScenarioError(f"{where}: riders must be in 1..min(seats, per_place)")
            if self.trips < 1 or self.trip_minutes <= 0:
                raise ScenarioError(f"{where}: trips and trip_minutes must be positive")
            if self.trips * self.trip_minutes > (self.end - self.start) * 60.0 + 1e-9:
                raise ScenarioError(f"{where}: trips do not fit between start and end")
        if self.kind == "open" and (self.area <= 0 or self.step < 1.0):
            raise ScenarioError(f"{where}: area must be positive and step at least 1 s")
        if self.kind == "open" and not (0 <= self.speed[0] <= self.speed[1]
                                        and 0 <= self.pause[0] <= self.pause[1]):
            raise ScenarioError(f"{where}: speed and pause need 0 <= low <= high")
        if self.pitch <= 0:
            raise ScenarioError(f"{where}: pitch must be positive")


@dataclass
class Scenario:
    """Everything a run needs besides the seed. All times in seconds unless named."""

    name: str
    description: str = ""
    days: int = 1
    population: int = 10
    places: list[PlaceSpec] = field(default_factory=list)
    uptake: float = 1.0  # share of people running the app
    p_loss: float = 0.0  # share of beacons lost in transit
    infected: float | list[int] = 0.1  # share of people, or their ids
    profiles: dict[str, float] = field(default_factory=lambda: {"opentrace-android": 1.0})
    # Profile parameters: name -> {key: value} changing a preset or defining a new
    # profile (profiles.resolve_profiles); in TOML, a [profiles.NAME] table.
    profile_settings: dict[str, dict[str, Any]] = field(default_factory=dict)
    beacon_interval: float = 10.0  # the assignment profile's beaconing period
    tempid_lifetime: float = 900.0
    tempid_batch: int = 1  # TempIDs handed out per request (OpenTrace: 100)
    tempid_refresh: float = 0.0  # request period when batch > 1 (OpenTrace: 12 h)
    retention: float = 21 * DAY  # how long a phone keeps a log entry
    upload_at: float = -1.0  # when infected phones upload (s); < 0: end of the run
    cutoff: float = 10.0  # farthest distance (m) listed as co-location
    pair_detectable: float = 1.0  # P(a directed pair can hear each other at all)
    # "pair": drawn once per directed pair for the whole run; "interval": drawn
    # afresh for every co-location interval (each meeting, or each step in the open)
    pair_detectable_per: str = "pair"
    model_offsets: str = "none"  # per-phone-model offsets: none | opentrace | gaen
    record_fraction: float = -1.0  # share of receivers logged in detail; < 0: automatic
    radio: dict[str, float] = field(default_factory=dict)  # overrides for every preset
    primary_rule: str = "bluetrace"  # the contact rule behind the headline numbers
    # Extra ground-truth rules: name -> {distance (m), minutes, cumulative (bool)}.
    contact_rules: dict[str, dict[str, Any]] = field(default_factory=dict)

    def check(self) -> None:
        """Raise ScenarioError on values the world cannot build."""
        if self.days < 1 or self.population < 1:
            raise ScenarioError("days and population must be >= 1")
        if self.days > MAX_DAYS or self.population > MAX_POPULATION:
            raise ScenarioError(f"at most {MAX_DAYS} days and {MAX_POPULATION:,} people")
        if not self.places:
            raise ScenarioError("a scenario needs at least one [[place]]")
        for p in self.places:
            p.check()
            if p.count * p.per_place > self.population:
                raise ScenarioError(
                    f"place {p.name!r}: {p.count} x {p.per_place} people exceed "
                    f"the population of {self.population}"
                )
        for name, value in (("uptake", self.uptake), ("p_loss", self.p_loss),
                            ("pair_detectable", self.pair_detectable)):
            if not 0.0 <= value <= 1.0:
                raise ScenarioError(f"{name} must be in [0, 1]")
        if isinstance(self.infected, list):
            bad = [i for i in self.infected if not 0 <= i < self.population]
            if bad:
                raise ScenarioError(f"infected id {bad[0]} is not a person of this scenario")
        elif not 0.0 <= self.infected <= 1.0:
            raise ScenarioError("infected must be a share in [0, 1] or a list of ids")
        known = self.phone_profiles()
        if not self.profiles or any(k not in known for k in self.profiles):
            raise ScenarioError(f"profiles must name some of {', '.join(known)}")
        if self.pair_detectable_per not in ("pair", "interval"):
            raise ScenarioError('pair_detectable_per must be "pair" or "interval"')
        if any(v < 0 for v in self.profiles.values()) or sum(self.profiles.values()) <= 0:
            raise ScenarioError("profile shares must be >= 0 and not all zero")
        if self.model_offsets not in MODEL_OFFSET_SCHEMES:
            raise ScenarioError(f"model_offsets must be one of {', '.join(MODEL_OFFSET_SCHEMES)}")
        if self.beacon_interval < 0.1 or self.tempid_lifetime < 1.0 or self.retention <= 0:
            raise ScenarioError(
                "need beacon_interval >= 0.1 s, tempid_lifetime >= 1 s and retention > 0"
            )
        if self.tempid_batch < 1:
            raise ScenarioError("tempid_batch must be >= 1")
        if self.cutoff <= 0:
            raise ScenarioError("cutoff must be > 0")
        fields = {f.name for f in dataclasses.fields(PRESETS["open"])}
        for key in self.radio:
            if key not in fields:
                raise ScenarioError(f"radio has no parameter {key!r}")
        try:
            rules = contact_rules(self.contact_rules)
        except ValueError as exc:
            raise ScenarioError(str(exc)) from None
        if self.primary_rule not in rules:
            raise ScenarioError(f"primary_rule must be one of {', '.join(rules)}")

    def phone_profiles(self) -> dict[str, PhoneProfile]:
        """Every profile this scenario can use: the presets with its settings applied,
        and its own profiles."""
        try:
            return resolve_profiles(self.profile_settings)
        except ValueError as exc:
            raise ScenarioError(str(exc)) from None

    @property
    def duration(self) -> float:
        """Simulated seconds."""
        return self.days * DAY

    @property
    def upload_time(self) -> float:
        """When infected phones upload their logs (seconds from the start)."""
        return self.duration if self.upload_at < 0 else self.upload_at

    def infected_count(self) -> int:
        """How many people the scenario infects (a share rounds, but never to 0)."""
        if isinstance(self.infected, list):
            return len(set(self.infected))
        if self.infected <= 0:
            return 0
        return max(1, round(self.infected * self.population))


# -- TOML ------------------------------------------------------------------------------------

_TUPLE_FIELDS: Final = {"speed", "pause"}


def _place_from_dict(raw: Any, index: int) -> PlaceSpec:
    if not isinstance(raw, dict):
        raise ScenarioError(f"place {index}: must be a table ([[place]])")
    known = {f.name for f in dataclasses.fields(PlaceSpec)}
    unknown = set(raw) - known
    if unknown:
        raise ScenarioError(f"place {index}: unknown key {sorted(unknown)[0]!r}")
    values = dict(raw)
    values.setdefault("name", f"place{index}")
    if isinstance(values["name"], str):
        values["name"] = printable(values["name"])
    for key in _TUPLE_FIELDS & set(values):
        pair = values[key]
        if not (isinstance(pair, list) and len(pair) == 2 and all(
            isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
            for v in pair
        )):
            raise ScenarioError(f"place {index}: {key} must be a list of two numbers")
        values[key] = (float(pair[0]), float(pair[1]))
    place: PlaceSpec = _typed(PlaceSpec, values, f"place {index}")
    return place


def _typed(cls: type[Any], values: dict[str, Any], where: str) -> Any:
    """Build a dataclass, coercing ints to floats where a float is declared."""
    types = {f.name: f.type for f in dataclasses.fields(cls)}
    out: dict[str, Any] = {}
    for key, raw in values.items():
        declared = str(types[key])
        value = raw
        if isinstance(raw, float) and not math.isfinite(raw):
            raise ScenarioError(f"{where}: {key} must be a finite number")
        if declared == "float" and isinstance(raw, int) and not isinstance(raw, bool):
            value = float(raw)
        elif declared == "int" and not (isinstance(value, int) and not isinstance(value, bool)):
            raise ScenarioError(f"{where}: {key} must be an integer")
        elif declared == "float" and not isinstance(value, float):
            raise ScenarioError(f"{where}: {key} must be a number")
        elif declared == "str" and not isinstance(value, str):
            raise ScenarioError(f"{where}: {key} must be a string")
        out[key] = value
    try:
        return cls(**out)
    except TypeError as exc:
        raise ScenarioError(f"{where}: {exc}") from None


def scenario_from_dict(raw: dict[str, Any]) -> Scenario:
    """Build and check a Scenario from parsed TOML."""
    known = {f.name for f in dataclasses.fields(Scenario)} | {"place"}
    unknown = set(raw) - known - {"places"}
    if unknown:
        raise ScenarioError(f"unknown scenario key {sorted(unknown)[0]!r}")
    values = {k: v for k, v in raw.items() if k not in ("place", "places")}
    places_raw = raw.get("place", raw.get("places", []))
    if not isinstance(places_raw, list):
        raise ScenarioError("place must be an array of tables ([[place]])")
    places = [_place_from_dict(p, i) for i, p in enumerate(places_raw)]
    if "name" not in values:
        raise ScenarioError("a scenario needs a name")
    for key in ("name", "description"):
        if isinstance(values.get(key), str):
            values[key] = printable(values[key])
    infected = values.pop("infected", 0.1)
    profiles, settings = _split_profiles(
        values.pop("profiles", {"opentrace-android": 1.0}), values.pop("profile_settings", {})
    )
    radio = values.pop("radio", {})
    for label, table in (("profiles", profiles), ("radio", radio)):
        if not isinstance(table, dict) or not all(
            isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
            for v in table.values()
        ):
            raise ScenarioError(f"{label} must be a table of numbers")
    if not isinstance(values.get("contact_rules", {}), dict):
        raise ScenarioError("contact_rules must be a table of tables")
    if isinstance(infected, int) and not isinstance(infected, bool):
        infected = float(infected)
    if isinstance(infected, float) and not math.isfinite(infected):
        raise ScenarioError("infected must be a share in [0, 1] or a list of ids")
    if not (isinstance(infected, float) or (
        isinstance(infected, list) and all(isinstance(i, int) for i in infected)
    )):
        raise ScenarioError("infected must be a share in [0, 1] or a list of ids")
    scenario: Scenario = _typed(Scenario, values, "scenario")
    scenario.places = places
    scenario.infected = infected
    scenario.profiles = {k: float(v) for k, v in profiles.items()}
    try:
        scenario.profile_settings = normalise_settings(settings)
    except ValueError as exc:
        raise ScenarioError(str(exc)) from None
    scenario.radio = {k: float(v) for k, v in radio.items()}
    scenario.check()
    return scenario


def _split_profiles(raw: Any, extra: Any) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """``profiles`` as read: NAME = share, or a [profiles.NAME] table with ``share``
    and settings. Returns (shares, settings); a table without ``share`` has share 0."""
    if not isinstance(raw, dict) or not isinstance(extra, dict):
        raise ScenarioError("profiles must be a table of shares or of profile tables")
    shares: dict[str, Any] = {}
    settings: dict[str, dict[str, Any]] = {
        str(k): dict(v) for k, v in extra.items() if isinstance(v, dict)
    }
    for name, value in raw.items():
        if isinstance(value, dict):
            table = dict(value)
            share = table.pop("share", 0.0)
            shares[name] = share
            settings[name] = {**settings.get(name, {}), **table}
        else:
            shares[name] = value
    return shares, settings


def load_toml(path: Path) -> Scenario:
    """Read a scenario file; any problem becomes a one-line ScenarioError."""
    try:
        with path.open("rb") as fh:
            raw = tomllib.load(fh)
    except OSError as exc:
        raise ScenarioError(f"cannot read {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"{path}: not valid TOML ({exc})") from None
    except UnicodeDecodeError as exc:
        raise ScenarioError(
            f"{path}: not a text file (a scenario is UTF-8 TOML; byte 0x{exc.object[exc.start]:02x}"
            f" at offset {exc.start} is not)"
        ) from None
    try:
        return scenario_from_dict(raw)
    except ScenarioError as exc:
        raise ScenarioError(f"{path}: {exc}") from None


def builtin_names() -> list[str]:
    """Names of the built-in scenarios."""
    return sorted(p.stem for p in SCENARIO_DIR.glob("*.toml"))


def load_scenario(name_or_path: str) -> Scenario:
    """A built-in scenario by name, or a scenario file by path."""
    builtin = SCENARIO_DIR / f"{name_or_path}.toml"
    if "/" not in name_or_path and builtin.is_file():
        return load_toml(builtin)
    path = Path(name_or_path)
    if path.suffix == ".toml" or path.exists():
        return load_toml(path)
    raise ScenarioError(
        f"no scenario {name_or_path!r}: use a TOML file or one of {', '.join(builtin_names())}"
    )


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isinf(value) or math.isnan(value):
            raise ScenarioError("scenario values must be finite")
        return repr(value)
    if isinstance(value, str):
        escaped = value.replace("\\", "\\\\").replace('"', '\\"')
        return f'"{escaped}"'
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        inner = ", ".join(f'"{k}" = {_toml_value(v)}' for k, v in value.items())
        return "{ " + inner + " }" if inner else "{}"
    raise ScenarioError(f"cannot write {type(value).__name__} to TOML")


def scenario_to_dict(scenario: Scenario) -> dict[str, Any]:
    """Plain data (for results.json and TOML)."""
    out = dataclasses.asdict(scenario)
    out["place"] = out.pop("places")
    settings = out.pop("profile_settings")
    profiles: dict[str, Any] = {}
    for name in [*out["profiles"], *(k for k in settings if k not in out["profiles"])]:
        share = out["profiles"].get(name, 0.0)
        table = {
            k: list(v) if isinstance(v, tuple) else v for k, v in settings.get(name, {}).items()
        }
        profiles[name] = {"share": share, **table} if table else share
    out["profiles"] = profiles
    for p in out["place"]:
        for key in _TUPLE_FIELDS:
            p[key] = list(p[key])
    return out


def scenario_to_toml(scenario: Scenario) -> str:
    """TOML text that ``load_toml`` reads back to an equal scenario."""
    data = scenario_to_dict(scenario)
    lines = [f"{k} = {_toml_value(v)}" for k, v in data.items() if k != "place"]
    for place in data["place"]:
        lines.append("")
        lines.append("[[place]]")
        lines.extend(f"{k} = {_toml_value(v)}" for k, v in place.items())
    return "\n".join(lines) + "\n"


# -- --set key=value -----------------------------------------------------------------------


def _parse_value(text: str) -> Any:
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text  # a bare word is a string


def apply_overrides(scenario: Scenario, assignments: list[str]) -> Scenario:
    """Apply ``key=value`` strings: ``uptake=0.6``, ``radio.s_pair=6``,
    ``profiles.gaen=1`` (a share), ``profiles.opentrace-ios.background_share=0.5``
    (a profile parameter, or a new profile's), ``place.office.pitch=1.5`` (a place
    by name or index),
    ``contact_rules.near.distance=1`` (with ``.minutes`` and ``.cumulative``).
    Returns a new, checked scenario."""
    data = scenario_to_dict(scenario)
    for item in assignments:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ScenarioError(f"--set needs key=value, got {item!r}")
        value = _parse_value(text.strip())
        parts = key.split(".")
        if parts[0] == "profiles" and len(parts) == 2:
            entry = data["profiles"].get(parts[1])
            if isinstance(entry, dict):
                entry["share"] = value
            else:
                data["profiles"][parts[1]] = value
        elif parts[0] == "profiles" and len(parts) == 3:
            entry = data["profiles"].get(parts[1], 0.0)
            if not isinstance(entry, dict):
                entry = {"share": entry}
            entry[parts[2]] = value
            data["profiles"][parts[1]] = entry
        elif parts[0] == "radio" and len(parts) == 2:
            data[parts[0]][parts[1]] = value
        elif parts[0] == "contact_rules" and len(parts) == 3:
            data["contact_rules"].setdefault(parts[1], {})[parts[2]] = value
        elif parts[0] == "place" and len(parts) == 3:
            places = data["place"]
            target = next((p for p in places if p["name"] == parts[1]), None)
            if target is None and parts[1].isdigit() and int(parts[1]) < len(places):
                target = places[int(parts[1])]
            if target is None:
                raise ScenarioError(f"--set {key}: no place {parts[1]!r}")
            if parts[2] not in target:
                raise ScenarioError(f"--set {key}: places have no {parts[2]!r}")
            target[parts[2]] = value
        elif len(parts) == 1 and parts[0] in data and parts[0] != "place":
            data[parts[0]] = value
        else:
            raise ScenarioError(f"--set {key}: unknown parameter")
    return scenario_from_dict(data)
