"""Seeded, reproducible synthetic FAQ knowledge bases for the scale benchmarks.

Entries read like real government-service FAQs: a place, an office and a matter, asked
about in the ways citizens ask (how to apply, materials, time limits, fees, where to go,
who may apply). The shipped FAQ is kept in every generated knowledge base, so the public
and held-out question sets still measure accuracy at every size.
"""
from __future__ import annotations

import random
from typing import Iterator

PLACES = ["北京", "上海", "天津", "重庆", "河北", "山西", "辽宁", "吉林", "黑龙江", "江苏", "浙江", "安徽",
          "福建", "江西", "山东", "河南", "湖北", "湖南", "广东", "海南", "四川", "贵州", "云南", "陕西",
          "甘肃", "青海", "内蒙古", "广西", "西藏", "宁夏", "新疆", "深圳", "厦门", "宁波", "青岛", "大连"]
OFFICES = ["市场监管", "税务", "人社", "民政", "住建", "交通", "水利", "农业农村", "商务", "文旅", "卫健",
           "应急管理", "医保", "林草", "体育", "科技", "教育", "生态环境", "自然资源", "司法"]
MATTERS = ["营业执照", "食品经营许可", "建筑施工许可", "道路运输许可", "取水许可", "种子生产许可",
           "演出经营许可", "医疗机构执业登记", "社会团体登记", "安全生产许可", "排污许可", "采矿许可",
           "律师执业证", "教师资格认定", "职业资格证书", "失业保险金", "养老保险转移", "最低生活保障",
           "临时救助", "残疾人补贴", "公租房保障", "住房公积金提取", "不动产登记", "户籍迁移",
           "出入境证件", "机动车登记", "驾驶证换领", "出生医学证明", "婚姻登记", "科技成果登记",
           "高新技术企业认定", "专利资助", "外商投资备案", "对外贸易经营者备案", "文物保护审批",
           "林木采伐许可", "野生动物驯养许可", "渔业捕捞许可", "药品经营许可", "体育赛事备案"]
ASPECTS = [
    ("怎么申请{m}", ["{p}{o}部门的{m}怎么办理", "{m}在哪里申请", "{p}办{m}去哪", "申请{m}的流程"],
     "{p}{o}部门受理{m}申请，可通过政务服务网在线提交或到政务服务大厅窗口办理。"),
    ("申请{m}需要哪些材料", ["{m}要带什么证件", "办{m}准备什么资料", "{p}{m}材料清单", "{m}要哪些手续"],
     "申请{m}一般需提交申请表、身份证明和相关证明材料，具体以{p}{o}部门公布的办事指南为准。"),
    ("{m}多久能办好", ["{m}办理时限", "{p}{m}几个工作日办结", "{m}要等多长时间", "{m}审批期限"],
     "{p}{o}部门对{m}的承诺办结时限为{d}个工作日，材料齐全的当场受理。"),
    ("{m}收费吗", ["办{m}要交钱吗", "{m}费用多少", "{p}{m}收不收费", "{m}办理费用"],
     "{p}{o}部门办理{m}不收取费用。"),
    ("谁可以申请{m}", ["{m}申请条件", "什么人能办{m}", "{m}对申请人有什么要求", "外地人能申请{p}{m}吗"],
     "符合条件的申请人可向{p}{o}部门申请{m}，具体条件见办事指南。"),
]


def entries(n: int, seed: int = 20261125) -> Iterator[dict]:
    """``n`` synthetic FAQ entries (question, alternates, answer, category, source)."""
    rng = random.Random(seed)
    seen: set[str] = set()
    i = 0
    while i < n:
        p, o, m = rng.choice(PLACES), rng.choice(OFFICES), rng.choice(MATTERS)
        q, alts, a = rng.choice(ASPECTS)
        key = f"{p}{o}{m}{q}"
        if key in seen:
            # The space of combinations is finite; vary with a district number for large n.
            p = f"{p}第{rng.randint(1, 99)}区"
            key = f"{p}{o}{m}{q}"
            if key in seen:
                continue
        seen.add(key)
        fill = {"p": p, "o": o, "m": m, "d": rng.choice([5, 10, 15, 20])}
        yield {"key": f"synth-{i}", "question": f"{p}{o}部门：" + q.format(**fill) + "？",
               "alternates": [alt.format(**fill) for alt in rng.sample(alts, 4)],
               "answer": a.format(**fill), "category": "其他", "source": f"{p}{o}部门办事指南"}
        i += 1
