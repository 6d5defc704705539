"""The traffic ledger on a path 0 - 1 - 2 by hand: each convention's bits, the paper's mask
indices, the link model's time (immediate and deferred to a max over processes), checkpoints."""
import numpy as np
import pytest

from decopt.comm.ledger import PAPER_INDEX_BITS, Ledger

SRC, DST = np.array([0, 1, 1, 2]), np.array([1, 0, 2, 1])      # the out-arcs 0->1, 1->0, 1->2, 2->1
SENDER = np.array([10, 20, 30])                                   # bits each agent broadcasts
ALL = np.ones(3, dtype=bool)


@pytest.mark.parametrize("convention,bits", [("broadcast", 60), ("paper", 60), ("edge", 10 + 20 + 20 + 30)])
def test_a_broadcast_round_counts_per_convention(convention, bits):
    led = Ledger(SRC, DST, convention)
    led.record(SENDER[SRC], SENDER, ALL, times=3)
    assert led.bits == 3 * bits
    assert led.arc_bits.tolist() == [30, 60, 60, 90] and led.arc_msgs.tolist() == [3, 3, 3, 3]
    assert led.sim_time == 0.0 and not led.timed


def test_an_arc_without_a_message_is_not_a_message():
    led = Ledger(SRC, DST, "edge")
    arc = np.array([0, 5, 0, 7])
    led.record(arc, arc, arc > 0)
    assert led.bits == 12 and led.arc_msgs.tolist() == [0, 1, 0, 1]


def test_paper_counts_the_mask_indices_the_official_code_sends():
    arc = np.array([8, 8, 0, 8])                                   # the edge 1 - 2 is inactive on 1 -> 2 only
    k = 3
    shared = Ledger(SRC, DST, "paper").with_mask_indices(arc, k, shared=True)
    assert shared.tolist() == [8, 8 + PAPER_INDEX_BITS * k, 0, 8 + PAPER_INDEX_BITS * k]   # from the higher id
    own = Ledger(SRC, DST, "paper").with_mask_indices(arc, k, shared=False)
    assert own.tolist() == [8 + PAPER_INDEX_BITS * k] * 2 + [0, 8 + PAPER_INDEX_BITS * k]
    assert Ledger(SRC, DST, "broadcast").with_mask_indices(arc, k, shared=True) is arc


def test_link_model_time_is_the_slowest_carrying_arc_per_round():
    led = Ledger(SRC, DST, latency=0.5, bandwidth=10.0)
    led.record(np.array([10, 0, 40, 0]), SENDER, ALL, times=2)    # 2 rounds of 0.5 + 40 / 10
    led.record(np.zeros(4, dtype=np.int64), SENDER, ~ALL)         # nothing carried: no time
    assert led.timed and led.sim_time == 2 * 4.5


def test_deferred_rounds_take_their_time_once_maxed():
    led = Ledger(SRC, DST, latency=1.0, defer_time=True)
    led.record(np.array([10, 0, 0, 0]), SENDER, ALL)
    led.record(np.zeros(4, dtype=np.int64), SENDER, ~ALL)
    assert led.rounds == [10, -1] and led.sim_time == 0.0
    led.add_rounds(np.array([10, 3]))                              # another process carried 3 bits in round 2
    assert led.sim_time == 2.0


def test_state_dict_round_trip_selects_this_process_arcs():
    led = Ledger(SRC, DST, latency=1.0)
    led.record(SENDER[SRC], SENDER, ALL)
    saved = led.state_dict()
    full = {**saved, "arc_bits": np.array([99, *saved["arc_bits"]]), "arc_msgs": np.array([99, *saved["arc_msgs"]])}
    back = Ledger(SRC, DST, latency=1.0)
    back.load_state_dict(full, np.arange(1, 5))
    assert back.state_dict()["bits"] == 60 and back.sim_time == led.sim_time
    np.testing.assert_array_equal(back.arc_bits, led.arc_bits)
    assert back.traffic()["messages"].tolist() == [1, 1, 1, 1] and back.traffic()["src"].tolist() == SRC.tolist()
