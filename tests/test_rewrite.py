"""Follow-up rewriting rules (deterministic, no model)."""
from __future__ import annotations

import pytest

from qa.rerank import question_type, requested_unit
from qa.rewrite import rewrite

PREV = "2025年太原新增养老床位多少张？"


@pytest.mark.parametrize("question,history,expected", [
    ("那2022年呢？", [PREV], "2022年太原新增养老床位多少张？"),
    ("2022年呢", [PREV], "2022年太原新增养老床位多少张？"),
    ("去年呢", [PREV], "2024年太原新增养老床位多少张？"),
    ("明年呢？", [PREV], "2026年太原新增养老床位多少张？"),
    ("What about 2021?", [PREV], "2021年太原新增养老床位多少张？"),
    ("这个项目投资多少", ["太忻一体化经济区怎么建设？"], "太忻一体化经济区投资多少"),
    ("那公办幼儿园呢？", [PREV], "2025年公办幼儿园多少张？"),
    # Not elliptical, or no history: unchanged.
    ("2021年太原新建多少所公办幼儿园？", [PREV], "2021年太原新建多少所公办幼儿园？"),
    ("那2022年呢？", [], "那2022年呢？"),
])
def test_rewrite(question, history, expected):
    assert rewrite(question, history) == expected


def test_rewrite_uses_previous_rewritten_query():
    history = [{"question": "那2022年呢？", "rewritten_query": "2022年太原新增养老床位多少张？"}]
    assert rewrite("去年呢", history) == "2021年太原新增养老床位多少张？"


@pytest.mark.parametrize("question,qtype", [
    ("2025年太原新增养老床位多少张？", "number"),
    ("How many new elderly-care beds?", "number"),
    ("钟楼街改造计划几月完工？", "time"),
    ("2021年政府工作报告是由谁作的？", "person"),
    ("如何打造一流创新生态？", "explain"),
    ("“三零”服务是指什么？", "explain"),
    ("2022年两会提出服务业要做好哪四篇文章？", "entity"),
    ("要叫响哪些品牌？", "list"),
    ("太原计划申报哪个综保区？", "entity"),
    # English figures asked without "how many" (parity with 多远/比例/增长/面积多大)
    ("How far will the river walk be extended?", "number"),
    ("What is the GDP growth target?", "number"),
    ("What was the green space ratio in 2021?", "number"),
    ("What total area will the shelters cover?", "number"),
    # "which" + plural noun is a list; "which" + singular noun + verb ending in -s is not
    ("Which districts will get new parks?", "list"),
    ("Which of the projects started first?", "list"),
    ("Which county does the city want to develop?", "entity"),
    ("Which member suggested paying attention to teachers' health?", "entity"),
    ("Which “plus” formats will the city promote?", "list"),                  # a quoted word in between
    ("What does business integration mean for the city?", "entity"),         # "ratio" only as a word
])
def test_question_type(question, qtype):
    assert question_type(question) == qtype


def test_requested_unit():
    assert requested_unit("新增养老床位多少张？") == "张"
    assert requested_unit("地铁2号线全长多少公里?") == "公里"
    assert requested_unit("打造哪几个高地？") == ""
    assert requested_unit("增长多少？") == ""
