"""The scenario file ``funnelsim init`` writes: a bundled scenario, its comments kept, with a company's answers.

A new user should not copy and edit a bundled file by hand. ``funnelsim init PATH`` asks a few
questions (or takes ``--template``) and writes a valid, commented scenario to start from. The
templates are the bundled scenarios themselves (``scenarios/``, shipped as ``funnelsim.scenarios``),
so every key keeps the comment a planner reads there; the answers are put in with tomlkit, which
keeps the comments and layout:

- ``baseline``: ``baseline.toml``, a mid-market company selling annual contracts (bookings;
  renewals are not modelled);
- ``transactional``: the baseline's funnel selling **one-off orders**: each won deal is booked
  once, with no subscription section, smaller deals (mean 6,000) and shorter cycles (mean 21 days)
  than the baseline, and no planned AE hires;
- ``saas``: ``saas.toml``, yearly subscriptions to three segments (SMB, mid-market, enterprise),
  **without** its installed base (``saas-customers.csv`` is the example company's, and a file
  path would not survive the move): the company starts with no customers, and the file says
  where to list them.

The answers scale the template rather than replace single keys, so its shape (seasonality,
segment mix, deal-size spread) stays: the leads per month of every source scale so that they
add up to the answer; every deal size (segments', personas' and product prices too) scales by
the answer over the template's own (``sales.deal_size``); every sales cycle likewise; SDRs and
AEs are the total at the start, split between segments in the template's proportions (at least
one each).
"""

from __future__ import annotations

import datetime as dt
import math
import os
import re
import tempfile
import textwrap
from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from funnelsim.model.loading import bundled_scenario
from funnelsim.report.folder import OutputError

__all__ = ["TEMPLATES", "Answers", "InitError", "ask", "bundled", "check_target", "defaults", "starter_toml"]
__all__ += ["check_request", "write_starter"]

TEMPLATES = {
    "baseline": "a mid-market B2B company selling annual contracts: inbound, events and partner leads, "
    "SDRs qualifying MQLs, AEs closing (the bundled baseline.toml)",
    "transactional": "one-off sales: each won deal is booked once (no subscription, no renewals); smaller "
    "deals and shorter cycles than the baseline, no planned AE hires",
    "saas": "yearly subscriptions to three segments (SMB, mid-market, enterprise), each with its own SDR "
    "desk, AE team, win rate, cycle and deal size (the bundled saas.toml, starting with no customers)",
}
TEMPLATES_SHORT = {
    "baseline": "mid-market B2B, annual contracts; inbound, events and partner leads; SDRs and AEs.",
    "transactional": "one-off sales: each won deal is booked once; no subscription, no renewals.",
    "saas": "B2B SaaS, three segments, yearly subscriptions, starting with no customers.",
}
"""The ``description`` a written file gets (after the company's name)."""
SOURCE = {"baseline": "baseline.toml", "transactional": "baseline.toml", "saas": "saas.toml"}
# What makes the transactional template (on top of the baseline): answers and keys.
TRANSACTIONAL_DEAL, TRANSACTIONAL_CYCLE = 6000.0, 21.0
VOLUMES = {"leads_per_month": 1.0, "leads_per_week": 365.25 / 12 / 7, "leads_per_day": 365.25 / 12}
"""A source's volume keys and how many of each make a month (to add the sources up)."""

HEADER = """\
# {company}: a scenario written by `funnelsim init --template {template}` on {today}.
{about}
#
# Edit any value and run `funnelsim run {path}`; try a change without editing the
# file with `--set handoff.follow_up_rate=0.9`. Every key, unit and allowed range is in
# docs/scenario-reference.md (or `funnelsim schema`); the equations in docs/model.md.
# Units are in the names: *_days in days, *_per_month per calendar month, money in
# `currency`. Shares and probabilities are between 0 and 1. Distributions are tables:
# {{dist = "lognormal", mean = 60, sd = 35}}; a bare number means "always this value".
"""


class InitError(OutputError):
    """``funnelsim init`` cannot write the file as asked (it exists, an unknown template, a bad answer)."""


@dataclass(frozen=True)
class Answers:
    """What a company tells ``funnelsim init``; ``None`` keeps the template's value."""

    company: str | None = None
    currency: str | None = None
    leads_per_month: float | None = None
    sdrs: int | None = None
    aes: int | None = None
    deal_size: float | None = None
    cycle_days: float | None = None


QUESTIONS = {
    "company": "Company name",
    "currency": "Currency of all amounts (e.g. USD, EUR)",
    "leads_per_month": "Leads per month, all sources together",
    "sdrs": "SDRs (sales development reps) on staff",
    "aes": "AEs (account executives) on staff",
    "deal_size": "Average deal size, in the currency",
    "cycle_days": "Sales cycle, opportunity to close, in days",
}


# -- the templates -----------------------------------------------------------------------------


def bundled(name: str) -> Path:
    """A bundled scenario (:func:`funnelsim.model.loading.bundled_scenario`), or :class:`InitError` if missing."""
    path = bundled_scenario(name)
    if not path.is_file():
        raise InitError(f"the bundled scenario {name} is missing from this installation of funnelsim")
    return path


def _template(template: str) -> Any:
    """The template: its bundled file without the header comment, parsed by tomlkit (comments kept)."""
    import tomlkit

    if template not in TEMPLATES:
        raise InitError(f"--template: expected one of {', '.join(TEMPLATES)}, got {template!r}")
    text = bundled(SOURCE[template]).read_text(encoding="utf-8")
    body = re.sub(r"\A(?:[ \t]*(?:#[^\n]*)?\n)*", "", text)  # the file's own header: ours replaces it
    if template == "saas":  # the example's customers stay behind; say where a company's own go
        body, found = re.subn(
            r'^file = "saas-customers\.csv".*$',
            'customers = []   # none yet: list yours in a CSV and write file = "customers.csv" instead '
            "(columns arr and renewal_date or start_date; optionally id, segment, renewals)",
            body,
            flags=re.MULTILINE,
        )
        if not found:
            raise InitError("the bundled saas.toml no longer names saas-customers.csv: update funnelsim.report.starter")
    doc = tomlkit.parse(body)
    if template == "saas":
        doc["description"] = TEMPLATES_SHORT["saas"]
    if template == "transactional":
        _transactional(doc)
    return doc


def defaults(template: str) -> Answers:
    """The template's own answers: what the questions offer by default."""
    data = _template(template).unwrap()
    segments = list(data.get("segments", {}))
    return Answers(
        company=data["name"],
        currency=data.get("currency", "USD"),
        leads_per_month=round(_leads_per_month(data), 1),
        sdrs=_total(data, ("handoff", "sdr"), segments),
        aes=_total(data, ("sales", "ae"), segments),
        deal_size=_centre(data["sales"]["deal_size"]),
        cycle_days=_centre(data["sales"]["cycle_days"]),
    )


def _transactional(doc: Any) -> None:
    """The baseline turned into the one-off-sales template (in place)."""
    doc["name"] = "transactional"
    doc["description"] = "One-off " + TEMPLATES_SHORT["transactional"].removeprefix("one-off ")
    _scale(doc, "deal_size", TRANSACTIONAL_DEAL / _centre(doc["sales"]["deal_size"].unwrap()), digits=0)
    _scale(doc, "cycle_days", TRANSACTIONAL_CYCLE / _centre(doc["sales"]["cycle_days"].unwrap()), digits=1)
    doc["sales"]["deal_size"].comment("value of a one-off order, booked once at the win")
    doc["sales"]["ae"]["hires"] = []
    doc["sales"]["ae"]["hires"].comment("no planned hires; add e.g. { date = 2027-04-01, count = 2 }")


# -- answers into the file ---------------------------------------------------------------------


def starter_toml(template: str, answers: Answers | None = None, path: str = "FILE") -> str:
    """The scenario file ``funnelsim init`` writes: the template with ``answers`` put in, validated.

    Raises
    ------
    InitError
        An unknown template, or answers that do not make a valid scenario (each problem named).
    """
    import tomlkit

    answers = answers or Answers()
    doc = _template(template)
    _apply(doc, template, answers)
    company = _one_line(answers.company or str(doc["name"]))
    about = "\n".join("# " + line for line in textwrap.wrap(f"Template: {TEMPLATES[template]}.", 90))
    today = dt.date.today()
    header = HEADER.format(company=company, template=template, today=today, about=about, path=_one_line(path))
    text = header + "\n" + tomlkit.dumps(doc)
    _validate(text)
    return text


def _apply(doc: Any, template: str, answers: Answers) -> None:
    """Put each given answer into the parsed template (comments kept)."""
    data = doc.unwrap()
    if answers.company is not None:
        doc["name"] = answers.company
        doc["description"] = f"{answers.company}: {TEMPLATES_SHORT[template]}"
    if answers.currency is not None:
        doc["currency"] = answers.currency
    if answers.leads_per_month is not None:
        factor = answers.leads_per_month / _leads_per_month(data)
        for source in doc["sources"].values():
            for key in VOLUMES:
                if key in source:
                    source[key] = round(float(source[key]) * factor, 1)
    if answers.deal_size is not None:
        _scale(doc, "deal_size", answers.deal_size / _centre(data["sales"]["deal_size"]), digits=0)
    if answers.cycle_days is not None:
        _scale(doc, "cycle_days", answers.cycle_days / _centre(data["sales"]["cycle_days"]), digits=1)
    if answers.sdrs is not None:
        _set_team(doc, ("handoff", "sdr"), answers.sdrs, "SDRs")
    if answers.aes is not None:
        _set_team(doc, ("sales", "ae"), answers.aes, "AEs")


def _scale(doc: Any, key: str, factor: float, digits: int) -> None:
    """Scale every ``key`` in the file (a distribution's mean and sd, or a bare number), and with
    ``deal_size`` the persona deal sizes and product prices too."""
    money = key == "deal_size"

    def visit(node: Any) -> None:
        for name in list(node):
            value = node[name]
            if name == key or (money and name == "price"):
                _scale_value(node, name, factor, digits)
            elif money and name == "deal_size_by_persona":
                for persona in list(value):
                    _scale_value(value, persona, factor, digits)
            elif isinstance(value, dict):
                visit(value)

    visit(doc)


def _scale_value(parent: Any, name: str, factor: float, digits: int) -> None:
    value = parent[name]
    if isinstance(value, dict):
        for part in ("mean", "sd", "value"):
            if part in value:
                value[part] = round(float(value[part]) * factor, digits)
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        parent[name] = round(float(value) * factor, digits)


def _set_team(doc: Any, where: tuple[str, str], total: int, noun: str) -> None:
    """``total`` reps at the start: the count itself, or split between the segments like the template's."""
    import tomlkit

    section, team = where
    segments = doc.get("segments")
    if not segments:
        doc[section][team]["count"] = total
        return
    default = int(doc[section][team]["count"])
    now = {name: int(seg.get(section, {}).get(team, {}).get("count", default)) for name, seg in segments.items()}
    if total < len(now):
        raise InitError(f"{noun}: at least one per segment ({len(now)}: {', '.join(now)}), got {total}")
    for name, count in _split(total, now).items():
        seg = segments[name]
        if count == now[name] and team not in seg.get(section, {}):
            continue  # the segment keeps the shared default
        if section not in seg:
            seg[section] = tomlkit.table(is_super_table=True)
        if team not in seg[section]:
            table = tomlkit.table()
            table["count"] = count
            table.add(tomlkit.nl())
            seg[section][team] = table
        else:
            seg[section][team]["count"] = count
        if not seg[section][team]["count"].trivia.comment:
            seg[section][team]["count"].comment(f"this segment's share of the {total} {noun} in all")


def _split(total: int, weights: dict[str, int]) -> dict[str, int]:
    """``total`` split like ``weights`` (largest remainders), at least one each."""
    spare = total - len(weights)
    whole = sum(weights.values())
    shares = {name: spare * w / whole for name, w in weights.items()}
    counts = {name: int(share) for name, share in shares.items()}
    for name in sorted(shares, key=lambda n: counts[n] - shares[n])[: spare - sum(counts.values())]:
        counts[name] += 1
    return {name: count + 1 for name, count in counts.items()}


def _leads_per_month(data: dict[str, Any]) -> float:
    return sum(float(s.get(k, 0.0)) * per for s in data["sources"].values() for k, per in VOLUMES.items())


def _total(data: dict[str, Any], where: tuple[str, str], segments: list[str]) -> int:
    section, team = where
    default = int(data[section][team]["count"])
    if not segments:
        return default
    own = data["segments"]
    return sum(int(own[s].get(section, {}).get(team, {}).get("count", default)) for s in segments)


def _centre(value: Any) -> float:
    """A distribution's mean (or fixed value), or a bare number."""
    if isinstance(value, dict):
        for part in ("mean", "value"):
            if part in value:
                return float(value[part])
        raise InitError(f"cannot scale a {value.get('dist')} distribution by its mean")
    return float(value)


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _validate(text: str) -> None:
    """Refuse answers that do not make a valid scenario, naming each problem (``funnelsim validate``'s check)."""
    import tomllib

    from funnelsim.model.loading import parse_scenario
    from funnelsim.model.scenario import ScenarioError

    try:
        parse_scenario(tomllib.loads(text), "the answers")
    except ScenarioError as exc:
        raise InitError(str(exc)) from None


# -- asking and writing -------------------------------------------------------------------------


def ask(
    template: str | None,
    prompt: Callable[..., Any],
    confirm: Callable[..., bool],
    invalid: type[Exception],
    company: str,
) -> tuple[str, Answers]:
    """Ask the questions and return the template (``saas`` for a subscription business, else
    ``transactional``, unless one is given) and the answers.

    ``prompt`` and ``confirm`` are :func:`typer.prompt` and :func:`typer.confirm` (or stand-ins in
    tests); an answer that is not a positive number is refused with ``invalid`` (``typer.BadParameter``,
    which the prompt shows before asking again). The defaults are the template's own, the company's
    name the file's.
    """
    if template is None:
        subscriptions = confirm("Do you sell subscriptions (recurring revenue)?", default=False)
        template = "saas" if subscriptions else "transactional"
    known = replace(defaults(template), company=company)
    answers: dict[str, Any] = {}
    for field in fields(Answers):
        default = getattr(known, field.name)
        parse = _reader(field.name, invalid)
        answers[field.name] = prompt(QUESTIONS[field.name], default=default, value_proc=parse)
    return template, Answers(**answers)


def _reader(name: str, invalid: type[Exception]) -> Callable[[Any], Any]:
    """How an answer is read: text, a whole number of reps (at least 1), or a positive number."""

    def text(value: Any) -> str:
        value = _one_line(str(value))
        if not value:
            raise invalid(f"{QUESTIONS[name]}: give some text")
        return value

    def number(value: Any) -> float | int:
        try:
            read = float(str(value).replace(",", "").replace("_", ""))
        except ValueError:
            raise invalid(f"{value!r} is not a number") from None
        if not math.isfinite(read) or read <= 0:
            raise invalid(f"{QUESTIONS[name]}: expected a number above 0, got {value!r}")
        if name in ("sdrs", "aes"):
            if read != int(read):
                raise invalid(f"{QUESTIONS[name]}: expected a whole number, got {value!r}")
            return int(read)
        return read

    return text if name in ("company", "currency") else number


def _exists(path: Path) -> InitError:
    return InitError(f"{str(path)!r} already exists; choose another path or pass --force to replace it")


def check_request(path: Path, force: bool, questions: bool, terminal: bool) -> None:
    """Refuse, before any question is asked: questions with no one to answer them (input not a terminal,
    no ``--template``), a file that exists (without ``force``), a folder."""
    if questions and not terminal:
        raise InitError("pass --template saas|transactional|baseline (or run funnelsim init in a terminal to answer)")
    check_target(path, force)


def check_target(path: Path, force: bool) -> None:
    """Refuse a file that exists (without ``force``) or a folder."""
    if path.exists() and not force:
        raise _exists(path)
    if path.is_dir():
        raise InitError(f"{str(path)!r} is a folder; give a file name, e.g. {path / 'scenario.toml'}")


def write_starter(path: Path, text: str, force: bool) -> Path:
    """Write ``text`` to ``path``: never over an existing file unless ``force`` (then replaced whole)."""
    check_target(path, force)
    if path.is_dir():
        raise InitError(f"{str(path)!r} is a folder; give a file name, e.g. {path / 'scenario.toml'}")
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise InitError(f"cannot write {str(path)!r}: the folder {str(folder)!r} does not exist")
    if not force:
        try:
            with path.open("x", encoding="utf-8") as out:  # exclusive: a file that appeared meanwhile is kept
                out.write(text)
        except FileExistsError:
            raise InitError(
                f"{str(path)!r} already exists; choose another path or pass --force to replace it"
            ) from None
        return path
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=folder)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
        os.replace(temporary, path)  # the old file is replaced whole, never half-written
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)
    return path
