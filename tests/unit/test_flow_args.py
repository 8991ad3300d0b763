"""The arguments a released job of a chain or group runs with (records.released_args): what
it receives goes first, the stored arguments are kept byte for byte."""

from __future__ import annotations

import json

from backburner.backends.flow_rules import released_args


def test_nothing_received_leaves_the_arguments_alone() -> None:
    assert released_args('[1, "a"]', None, ['{"x": 1}']) == '[1, "a"]'


def test_a_result_goes_first() -> None:
    assert released_args("[]", "result", ['{"x":1}']) == '[{"x":1}]'
    assert released_args(' [ 2 , "b" ] ', "result", ["7"]) == '[7,2 , "b"]'
    assert json.loads(released_args("[2]", "result", [None])) == [None, 2]


def test_results_go_first_as_one_list_in_order() -> None:
    assert json.loads(released_args("[]", "results", ["1", None, '"c"'])) == [[1, None, "c"]]
    assert json.loads(released_args('["t"]', "results", [])) == [[], "t"]
