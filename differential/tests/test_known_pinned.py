"""A local campaign judges with the known list it started with (issue 18): a session that
committed a new entry while a campaign ran made every later batch fail, because workers
re-read the changed file with the code they had loaded. The list is pinned in the campaign
folder (its sha256 in campaign.json) and workers build their matchers from that copy."""

from __future__ import annotations

import json

import pytest

from differential.campaign import (
    PINNED_NAME,
    CampaignError,
    PinnedListError,
    Plan,
    Worker,
    prepare,
)
from differential.check import DIVERGE, KNOWN
from differential.known import KnownListError, PinnedList
from differential.tests.broken_runner import PLANTED_ENTRY, UNREADABLE_ENTRY, pinned_checkers

PLAN = Plan(seed=11, jobs=1, forms="ADD_*")


def _statuses(worker: Worker) -> dict:
    totals: dict = {}
    for counts in worker.state["forms"].values():
        for status, n in counts.items():
            totals[status] = totals.get(status, 0) + n
    return totals


def test_batches_after_the_file_changes_are_judged_with_the_pinned_list(tmp_path):
    source = tmp_path / "known.toml"
    source.write_text(PLANTED_ENTRY)
    folder = tmp_path / "campaign"
    plan = prepare(folder, PLAN, resume=False, known=PinnedList.read(source))
    assert (folder / PINNED_NAME).read_text() == PLANTED_ENTRY
    assert json.loads((folder / "campaign.json").read_text())["known_sha256"] == \
        plan.known_sha256 != ""
    first = Worker(folder, plan, 0, pinned_checkers)
    first.run_batch()
    first.flush()
    assert _statuses(first) == {KNOWN: 200}  # every ADD case: EAX flipped, the entry's
    # the file changes as a commit mid-campaign changed it: the planted entry is gone and
    # a new one has a key this code does not know (read now, it would fail every batch)
    source.write_text(UNREADABLE_ENTRY)
    with pytest.raises(KnownListError):
        PinnedList.read(source)
    again = prepare(folder, PLAN, resume=True, known=None)
    assert again == plan
    second = Worker(folder, again, 0, pinned_checkers)
    second.run_batch()
    assert _statuses(second) == {KNOWN: 400}
    assert second.state["known"] == {"planted-eax-bit-31": 400}
    assert DIVERGE not in _statuses(second)


def test_a_pinned_list_this_code_cannot_read_is_said_once_before_any_batch(tmp_path, capsys):
    from x86lab.cli import main

    folder = tmp_path / "campaign"
    plan = prepare(folder, PLAN, resume=False, known=PinnedList.read(_file(tmp_path)))
    # a newer x86lab pinned an entry with a key of its own: rewrite the pin and its hash
    pinned = PinnedList(UNREADABLE_ENTRY)
    (folder / PINNED_NAME).write_text(pinned.text)
    stored = json.loads((folder / "campaign.json").read_text())
    (folder / "campaign.json").write_text(json.dumps({**stored,
                                                      "known_sha256": pinned.digest}))
    with pytest.raises(PinnedListError, match="key_from_the_future"):
        prepare(folder, PLAN, resume=True)
    with pytest.raises(PinnedListError):
        Worker(folder, Plan(**{**plan.__dict__, "known_sha256": pinned.digest}), 0,
               pinned_checkers)
    code = main(["fuzz", "--resume", "--minutes", "0.02", "--jobs", "1", "--seed", "11",
                 "--forms", "ADD_*", "--out", str(folder)])
    err = capsys.readouterr().err
    assert code == 2, err
    assert "cannot read the known list the campaign pinned" in err
    assert err.count("key_from_the_future") == 1 and "Traceback" not in err
    assert not (folder / "workers" / "0.json").exists()  # no batch judged


def test_a_damaged_pin_is_named(tmp_path):
    folder = tmp_path / "campaign"
    prepare(folder, PLAN, resume=False, known=PinnedList.read(_file(tmp_path)))
    (folder / PINNED_NAME).write_text(PLANTED_ENTRY + "\n# edited by hand\n")
    with pytest.raises(CampaignError, match="sha256"):
        prepare(folder, PLAN, resume=True)


def _file(tmp_path):
    path = tmp_path / "known.toml"
    path.write_text(PLANTED_ENTRY)
    return path
