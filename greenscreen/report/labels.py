"""Bilingual labels for the packs (English and simplified Chinese)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Literal

Lang = Literal["en", "zh"]

LABELS: dict[str, tuple[str, str]] = {
    # sheets
    "sheet_summary": ("Summary", "摘要"),
    "sheet_inputs": ("Inputs", "输入"),
    "sheet_cashflow": ("CashFlow", "现金流"),
    "sheet_emissions": ("Emissions", "减排"),
    "sheet_taxonomy": ("Taxonomy", "分类判定"),
    "sheet_subsidies": ("Subsidies", "补贴"),
    "sheet_sources": ("Sources", "来源"),
    "sheet_requests": ("Requests", "补充资料清单"),
    "nothing_to_request": (
        "Nothing to request: every decision was made.",
        "无需补充资料：所有判定均已作出。",
    ),
    # summary
    "title": ("Green loan appraisal pack", "绿色贷款评估报告"),
    "project": ("Project", "项目"),
    "borrower": ("Borrower", "借款人"),
    "activity": ("Activity", "活动类型"),
    "province": ("Province", "省份"),
    "approval_date": ("Loan approval date", "贷款审批日期"),
    "cod": ("Commercial operation date", "投产日期"),
    "activity_input": ("as given", "客户提供"),
    "activity_inferred": ("inferred from the description: check it", "根据项目描述推断，请核实"),
    "programmes": ("Programmes", "补贴/再贷款政策"),
    "per_million": ("tCO2e a year per million lent", "每百万贷款年减排量 (tCO2e)"),
    "coal_saved": ("Standard coal saved", "节约标准煤"),
    "data_quality": ("Data quality (1 best … 5)", "数据质量（1 最好 … 5）"),
    "decisions": ("Decisions by rulebook", "各分类标准判定"),
    "rulebook": ("Rulebook", "标准"),
    "status": ("Status", "结论"),
    "item": ("Item", "条目"),
    "applies": ("Governs this loan", "适用于本笔贷款"),
    "missing": ("Ask the client for", "需补充的信息"),
    "key_metrics": ("Key metrics", "关键指标"),
    "metric": ("Metric", "指标"),
    "value": ("Value", "数值"),
    "unit": ("Unit", "单位"),
    "source": ("Source", "来源"),
    "verification": ("Verification", "核验状态"),
    "note": ("Note", "说明"),
    # metrics
    "avoided_year": ("Avoided emissions per year", "年减排量"),
    "avoided_life": ("Avoided emissions over the life", "全生命周期减排量"),
    "attributable": ("Attributable to the loan per year", "归属于贷款的年减排量"),
    "subsidy_total": ("Subsidies (committed)", "补贴（确定部分）"),
    "subsidy_potential": ("Subsidies (pending the client's attestation)", "补贴（待客户确认部分）"),
    "npv": ("NPV (post-tax, t = 0 undiscounted)", "净现值（税后，首期不折现）"),
    "project_irr": ("Project IRR (post-tax)", "项目内部收益率（税后）"),
    "project_irr_pretax": ("Project IRR (pre-tax)", "项目内部收益率（税前）"),
    "equity_irr": ("Equity IRR", "资本金内部收益率"),
    "min_dscr": ("Minimum DSCR", "最低偿债覆盖率"),
    "avg_dscr": ("Average DSCR", "平均偿债覆盖率"),
    "llcr": ("LLCR", "贷款期覆盖率"),
    "lcoe": ("LCOE", "平准化度电成本"),
    "debt": ("Debt at COD", "投产时贷款余额"),
    "breakeven": ("Breakeven tariff (computed by greenscreen)", "盈亏平衡电价（greenscreen计算）"),
    "payback": ("Payback (computed by greenscreen)", "投资回收期（greenscreen计算）"),
    # cash flow rows
    "year": ("Year index (t)", "年份序号 (t)"),
    "building": ("Construction (1/0)", "建设期 (1/0)"),
    "operating": ("Operation (1/0)", "运营期 (1/0)"),
    "op_year": ("Operating year k", "运营年 k"),
    "capex": ("Capex", "资本性支出"),
    "draw": ("Debt drawn", "贷款提款"),
    "idc": ("Interest during construction", "建设期利息"),
    "con_balance": ("Debt balance in construction", "建设期贷款余额"),
    "generation": ("Generation", "发电量"),
    "energy_revenue": ("Energy revenue", "售电收入"),
    "carbon_revenue": ("Carbon revenue", "碳收入"),
    "subsidies": ("Subsidies", "补贴"),
    "revenue": ("Revenue", "收入合计"),
    "opex": ("Opex", "运营成本"),
    "ebitda": ("EBITDA", "息税折旧摊销前利润"),
    "depreciation": ("Depreciation", "折旧"),
    "ebit": ("EBIT", "息税前利润"),
    "tax": ("Tax", "所得税"),
    "cfads": ("CFADS", "可用于偿债的现金流"),
    "in_loan": ("Loan year (1/0)", "还款期 (1/0)"),
    "amortising": ("Amortising (1/0)", "还本期 (1/0)"),
    "sculpt_target": ("Sculpted debt service target", "雕塑式还款目标"),
    "opening": ("Opening balance", "期初余额"),
    "interest": ("Interest", "利息"),
    "principal": ("Principal", "本金"),
    "debt_service": ("Debt service", "还本付息"),
    "closing": ("Closing balance", "期末余额"),
    "dscr": ("DSCR", "偿债覆盖率"),
    "project_cf_pre": ("Project cash flow (pre-tax)", "项目现金流（税前）"),
    "project_cf": ("Project cash flow (post-tax)", "项目现金流（税后）"),
    "shield": ("Interest tax shield", "利息抵税"),
    "equity_cf": ("Equity cash flow", "资本金现金流"),
    "discount": ("Discount factor", "折现系数"),
    # emissions
    "method": ("Method", "方法"),
    "ef": ("Grid emission factor", "电网排放因子"),
    "om": ("Operating margin (OM)", "电量边际 (OM)"),
    "bm": ("Build margin (BM)", "容量边际 (BM)"),
    "w_om": ("OM weight", "OM 权重"),
    "share": ("Attributable share (loan / investment)", "归属比例（贷款/总投资）"),
    "f1": ("First-year fraction (from COD, 365 days)", "首年比例（按投产日，365天）"),
    "flags": ("Plausibility flags", "合理性提示"),
    # taxonomy / subsidies
    "criterion": ("Criterion", "判定条件"),
    "result": ("Result", "结果"),
    "value_seen": ("Value seen", "输入值"),
    "threshold": ("Threshold", "阈值"),
    "clause": ("Clause", "条款"),
    "programme": ("Programme", "项目/政策"),
    "award": ("Award", "奖补类型"),
    "base": ("Base", "基数"),
    "rate": ("Rate", "标准"),
    "cap": ("Cap", "上限"),
    "gross": ("Gross amount", "测算金额"),
    "final": ("Final amount", "核定金额"),
    "payments": ("Payments by model year", "按年度拨付"),
    "reasons": ("Reasons", "依据"),
    # sources
    "tool": ("Tool", "工具"),
    "input_file": ("Input file", "输入文件"),
    "input_hash": ("Input SHA-256", "输入文件哈希"),
    "rulebooks": ("Rulebooks", "分类标准"),
    "factors": ("Emission factors", "排放因子"),
    "assumptions": ("Appraisal assumptions", "财务假设"),
    "chart_cashflow": ("Cash flow", "现金流"),
    "chart_dscr": ("DSCR", "偿债覆盖率"),
    "chart_emissions": ("Avoided emissions", "减排量"),
    # HTML pack
    "phase": ("Phase", "阶段"),
    "sensitivities": ("Sensitivities", "敏感性分析"),
    "driver": ("Driver", "变量"),
    "direction": ("Change", "变动"),
    "reported": ("reported, not a gate", "仅报告，不作判定"),
    "up_to": ("up to", "最高"),
    "construction": ("construction", "建设期"),
    "operation": ("operation", "运营期"),
    "tariff": ("Tariff", "电价"),
    "portfolio_title": ("Green loan pipeline screening", "绿色贷款项目筛查汇总"),
    "projects": ("Projects", "项目清单"),
    "n_projects": ("Projects screened", "筛查项目数"),
    "crosswalk": (
        "Legacy 2021 catalogue status × 2025 catalogue status (projects, loan amount)",
        "2021 年版目录结论 × 2025 年版目录结论（项目数、贷款金额）",
    ),
    "by_status": ("By rulebook and status", "按标准与结论汇总"),
    "requests": ("Evidence to request from the borrower", "需向借款人索取的资料"),
    "question": ("Question", "问题"),
    "yes": ("yes", "是"),
    "subsidy": ("subsidy", "补贴"),
    "relending": ("relending", "再贷款"),
    "no": ("no", "否"),
    "see_questions": ("questions", "见问题"),
    "needed_by": ("Needed by (rulebook item: clause)", "依据（标准条目：条款）"),
    "rejected_rows": ("Rejected input rows", "被拒绝的输入行"),
    "row": ("Row", "行号"),
    "field": ("Field", "字段"),
    "value_given": ("Value", "输入值"),
    "reason": ("Reason", "原因"),
    "n_rejected": ("Rejected input rows", "被拒绝的输入行"),
    "loan_total": ("Loan amount", "贷款金额合计"),
    "project_id": ("Project", "项目编号"),
    "project_name": ("Name", "项目名称"),
    "pass": ("pass", "满足"),
    "fail": ("fail", "不满足"),
    "unknown": ("unknown", "待补充"),
    "n/a": ("not in force", "不适用"),
    "no_item_applies": ("no item applies", "无适用条目"),
    "sc_met": ("substantial contribution", "实质性贡献"),
    "sc_yes": ("met", "满足"),
    "sc_no": ("not met", "不满足"),
    "sc_unknown": ("undecided", "待补充"),
    "carbon_scenario": ("Carbon price", "碳价情景"),
    "npv_short": ("NPV", "净现值"),
    "avoided_short": ("tCO2e / year", "年减排量 (tCO2e)"),
    "more_rows": (
        "more projects are in results.parquet and portfolio.xlsx.",
        "个项目见 results.parquet 和 portfolio.xlsx。",
    ),
    "npv_sensitivity": ("NPV change by driver", "净现值敏感性（变动额）"),
    "npv_note": (
        "NPV treats the first cash flow as today, undiscounted (numpy-financial convention);"
        " Excel's NPV() discounts it.",
        "净现值将第一期现金流视为当期、不折现（numpy-financial 口径）；Excel 的 NPV() 会对其折现。",
    ),
    "irr_reason": ("IRR not computed", "内部收益率未计算"),
    # assumptions (run options), where a project gives no value of its own
    "tax_rate": ("Income tax rate (default)", "所得税率（默认）"),
    "discount_rate": ("Discount rate (default)", "折现率（默认）"),
    "interest_rate": ("Loan interest rate (default)", "贷款利率（默认）"),
    "debt_profile": ("Debt repayment profile", "还款方式"),
    "target_dscr": ("Target DSCR (sculpted debt)", "目标偿债覆盖率（雕塑式还款）"),
    "carbon_price": ("Carbon price", "碳价"),
    "sensitivity": ("Sensitivity range", "敏感性变动幅度"),
    "project_own": ("each project's own (no default)", "按各项目输入（无默认值）"),
    "annuity": ("annuity", "等额本息"),
    "equal_principal": ("equal principal", "等额本金"),
    "sculpted": ("sculpted to the target DSCR", "按目标偿债覆盖率雕塑"),
}

STATUS_ZH = {
    "aligned": "符合（一致）",
    "eligible": "符合",
    "not_eligible": "不符合",
    "excluded": "排除",
    "not_excluded": "未排除",
    "insufficient_data": "信息不足",
}


def t(key: str, lang: Lang) -> str:
    """The label for a key in a language.

    Parameters
    ----------
    key : str
        A key of :data:`LABELS`.
    lang : {"en", "zh"}

    Returns
    -------
    str

    Raises
    ------
    KeyError
        An unknown key.
    """
    en, zh = LABELS[key]
    return zh if lang == "zh" else en


def status_text(status: str | None, lang: Lang) -> str:
    """A status as a reader reads it: the status itself, or in Chinese ``信息不足
    (insufficient_data)``.

    Parameters
    ----------
    status : str or None
    lang : {"en", "zh"}

    Returns
    -------
    str
        Empty for none.
    """
    if status is None:
        return ""
    return f"{STATUS_ZH.get(status, status)} ({status})" if lang == "zh" else status


def sc_text(sc_met: bool | None, lang: Lang) -> str:
    """The EU substantial-contribution result beside an alignment status.

    Parameters
    ----------
    sc_met : bool or None
        ``R__sc_met``: met, not met, undecided.
    lang : {"en", "zh"}

    Returns
    -------
    str
        ``substantial contribution: met``, or its Chinese.
    """
    value = {True: "sc_yes", False: "sc_no", None: "sc_unknown"}[sc_met]
    return f"{t('sc_met', lang)}: {t(value, lang)}"


def short_status(status: str | None, lang: Lang) -> str:
    """A status badge that fits a table cell: ``信息不足`` / ``insufficient data``.

    Parameters
    ----------
    status : str or None
    lang : {"en", "zh"}

    Returns
    -------
    str
    """
    if not status:
        return ""
    return STATUS_ZH.get(status, status) if lang == "zh" else status.replace("_", " ")


# ---- the engine's English sentences, as a Chinese reader gets them --------------------------
# The engine writes its notes, flags and provenance in English (they are data: results.csv,
# run.json). Reports in Chinese translate them here, pattern by pattern; a sentence without a
# pattern is shown as it is (a test renders every sample pack in Chinese and finds none).
_REGION_ZH = {
    "North": "华北",
    "Northeast": "东北",
    "East": "华东",
    "Central": "华中",
    "Northwest": "西北",
    "South": "南方",
    "Southern": "南方",
    "National": "全国",
    "national": "全国",
}
VERIFICATION_ZH = {
    "verified": "已核实",
    "unverified": "未核实",
    "secondary": "二手来源",
    "project": "项目提供",
    "none": "无",
}
METHOD_ZH = {
    "grid_power": "上网电量替代电网电量（ACM0002 / TOOL07）",
    "efficiency": "节能量（节电 × 电网因子 + 节约燃料 × 燃料因子）",
    "buildings": "建筑能耗降低 × 面积 × 电网因子",
    "vehicles": "替代燃油车（燃油排放 − 电耗 × 电网因子）",
    "methane": "甲烷回收 × GWP100（及发电替代）",
    "ccus": "二氧化碳封存量",
    "storage": "储能（需用户提供替代排放量）",
}


def _zh_region(match: re.Match[str], group: int) -> str:
    return _REGION_ZH.get(match.group(group), match.group(group))


_SENTENCES_ZH: list[tuple[re.Pattern[str], Callable[[re.Match[str]], str]]] = [
    (
        re.compile(r"implausible yield: (\S+) full-load hours \(expected (\S+)–(\S+)\)"),
        lambda m: f"发电小时数异常：满发 {m[1]} 小时（合理范围 {m[2]}–{m[3]}）",
    ),
    (
        re.compile(
            r"annual_generation_mwh differs from capacity × full_load_hours by more than 10 %"
        ),
        lambda m: "年发电量与装机容量 × 满发小时数相差超过 10%",
    ),
    (
        re.compile(r"grid factor vintage (\d+) is more than (\d+) years before (\d+)"),
        lambda m: f"电网排放因子年份 {m[1]} 早于 {m[3]} 年超过 {m[2]} 年",
    ),
    (
        re.compile(r"negative avoided emissions: the project adds emissions"),
        lambda m: "减排量为负：项目增加排放",
    ),
    (re.compile(r"activity data given"), lambda m: "活动数据由客户提供"),
    (
        re.compile(r"activity data estimated \(capacity × hours or default fuel\)"),
        lambda m: "活动数据为估算（装机 × 小时数或默认燃料）",
    ),
    (
        re.compile(r"grid factor (\w+)"),
        lambda m: f"电网排放因子{VERIFICATION_ZH.get(m[1], m[1])}",
    ),
    (
        re.compile(
            r"CCER/CDM (\d+) combined margin, (\w+) grid, OM ([\d.]+) / BM ([\d.]+) "
            r"\((\w+); OM ([\d.]+) / BM ([\d.]+)\)"
        ),
        lambda m: (
            f"CCER/CDM {m[1]} 年组合边际排放因子，{_zh_region(m, 2)}电网，"
            f"权重 OM {m[3]} / BM {m[4]}"
            f"（{VERIFICATION_ZH.get(m[5], m[5])}；OM {m[6]} / BM {m[7]}）"
        ),
    ),
    (
        re.compile(r"project override ([\d.]+) tCO2/MWh"),
        lambda m: f"项目自报电网排放因子 {m[1]} tCO2/MWh",
    ),
    (
        re.compile(r"project OM/BM override, combined margin \(OM ([\d.]+) / BM ([\d.]+)\)"),
        lambda m: f"项目自报 OM/BM，组合边际（权重 OM {m[1]} / BM {m[2]}）",
    ),
    (
        re.compile(r"ets_grid_average (\d+), (\w+) \((\w+)\)"),
        lambda m: (
            f"全国碳市场 {m[1]} 年全国电网平均排放因子，{_zh_region(m, 2)}"
            f"（{VERIFICATION_ZH.get(m[3], m[3])}）"
        ),
    ),
    (
        re.compile(r"no avoided-emissions method for this activity"),
        lambda m: "该活动类型无减排量计算方法",
    ),
    (
        re.compile(r"storage: no avoided emissions without a displacement basis.*"),
        lambda m: "储能：无替代基准时不计算减排量（请提供 displaced_tco2e_per_year）",
    ),
    (
        re.compile(r"needs annual_generation_mwh, or capacity_mw and full_load_hours"),
        lambda m: "需要年发电量，或装机容量和满发小时数",
    ),
    (
        re.compile(r"no grid factor: province outside the factor tables.*"),
        lambda m: "无电网排放因子：省份不在因子表内，请提供 grid_ef_tco2_per_mwh",
    ),
    (
        re.compile(r"needs electricity_saved_mwh or fuel_saved_t"),
        lambda m: "需要节电量或节约燃料量",
    ),
    (
        re.compile(r"missing inputs for the (\w+) method"),
        lambda m: f"{METHOD_ZH.get(m[1], m[1])}方法缺少输入",
    ),
    (
        re.compile(r"baseline fuel assumed (\w+) \(no fuel_type given\)"),
        lambda m: f"未提供燃料类型，基准燃料按 {m[1]} 计",
    ),
    (
        re.compile(
            r"needs total_investment, operating_years and tariff × generation or annual_revenue"
        ),
        lambda m: "需要总投资、运营年限，以及电价 × 发电量或年收入",
    ),
    (re.compile(r"no sign change"), lambda m: "现金流无正负变化"),
    (re.compile(r"no root found in \(-99 %, 1000 %\)"), lambda m: "在 −99% 至 1000% 之间无解"),
    (re.compile(r"pre-tax project IRR"), lambda m: "税前项目内部收益率"),
    (re.compile(r"project IRR"), lambda m: "项目内部收益率"),
    (re.compile(r"equity IRR"), lambda m: "资本金内部收益率"),
]


_PARTS = re.compile(r"; (?![^()]*\))")  # "; " outside parentheses


def localise(text: str | None, lang: Lang) -> str:
    """An engine sentence (flag, note, factor provenance, IRR reason) in a language.

    English as written; Chinese by the patterns of ``_SENTENCES_ZH``, parts joined by
    ``"; "`` (outside parentheses) translated one by one.

    Parameters
    ----------
    text : str or None
    lang : {"en", "zh"}

    Returns
    -------
    str
    """
    if not text or lang != "zh":
        return text or ""
    parts = []
    for part in _PARTS.split(text):
        for pattern, render in _SENTENCES_ZH:
            part = pattern.sub(render, part)
        parts.append(part)
    return "；".join(parts)
