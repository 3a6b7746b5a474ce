"""The Art. 29 report as a PDF: the period's figures, the breakdowns and three charts, laid out by WeasyPrint
with Debian's Noto CJK fonts as the official documents are (``activities.documents``), A4 with page numbers.

It is a working report for the standing committee's review, not a numbered 公文: it carries no 文号 and no seal.
"""

from __future__ import annotations

import base64
from datetime import date

import jinja2

from activities.typesetting import write_pdf
from approvals.reports import charts
from approvals.reports.tables import COLUMNS, GROUP_NAMES, NONE_LABEL, breakdown_tables
from schemas.reports import ReportSummary

_TEMPLATE = """<!DOCTYPE html>
<html lang="zh-CN">
<head>
<meta charset="utf-8">
<title>{{ organ }}办件统计报告</title>
<meta name="author" content="{{ organ }}">
<style>
  @page { size: A4; margin: 25mm 20mm 25mm 20mm;
          @bottom-center { content: "— " counter(page) " —"; font: 11pt "Noto Serif CJK SC"; } }
  html { font-family: "Noto Serif CJK SC", serif; font-size: 10.5pt; line-height: 1.5; }
  h1 { font-size: 18pt; text-align: center; margin: 0 0 4mm 0; }
  h2 { font-size: 13pt; margin: 6mm 0 2mm 0; }
  p.period { text-align: center; margin: 0 0 6mm 0; }
  table { border-collapse: collapse; width: 100%; font-size: 8pt; }
  th, td { border: 0.5pt solid #555; padding: 1mm; text-align: right; }
  th:first-child, td:first-child { text-align: left; }
  th { background: #eee; font-weight: bold; }
  img.chart { width: 100%; margin: 2mm 0; }
  .figures th { writing-mode: horizontal-tb; }
</style>
</head>
<body>
<h1>{{ organ }}<br>行政审批办件统计报告</h1>
<p class="period">统计期间：{{ local_date(summary.from_date) }}至{{ local_date(summary.to_date) }}（按收件日期）<br>
依据《博尔塔拉蒙古自治州阿拉山口综合保税区管理条例》第二十九条</p>

<h2>一、总体情况</h2>
<p>期间收件{{ total.received }}件，受理{{ total.accepted }}件，不予受理{{ total.refused_to_accept }}件；
准予{{ total.granted }}件，不予{{ total.refused }}件，撤回{{ total.withdrawn }}件，
监管中{{ total.under_supervision }}件。
{% if total.decision_days_mean is not none %}办结平均用时{{ "%.1f"|format(total.decision_days_mean) }}个工作日，
中位数{{ "%.1f"|format(total.decision_days_median) }}个工作日，
90%的办件在{{ "%.1f"|format(total.decision_days_p90) }}个工作日内办结。{% endif %}
{% if total.on_time_rate is not none %}计法定期限的{{ total.with_statutory_period }}件中按期办结{{ total.on_time }}件，
按期办结率{{ "%.1f"|format(100 * total.on_time_rate) }}%。{% endif %}
延期{{ total.extensions }}次，补正{{ total.supplements }}次，特别程序（第四十五条）{{ total.excluded_periods }}次。</p>

<h2>二、每月收件与办结</h2>
<img class="chart" alt="每月收件与办结" src="data:image/svg+xml;base64,{{ per_month }}">

<h2>三、办结用时分布</h2>
<img class="chart" alt="办结用时分布" src="data:image/svg+xml;base64,{{ distribution }}">

<h2>四、各单位按期办结率</h2>
<img class="chart" alt="各单位按期办结率" src="data:image/svg+xml;base64,{{ on_time }}">

<h2>五、分{{ group_name }}统计</h2>
<table class="figures">
<tr><th>{{ group_name }}</th>{% for name, zh in columns %}<th>{{ zh }}</th>{% endfor %}</tr>
{% for group in summary.groups %}<tr><td>{{ group.key or none_label }}</td>{% for name, zh in columns %}<td>{{
  shown(group[name]) }}</td>{% endfor %}</tr>
{% endfor %}<tr><th>合计</th>{% for name, zh in columns %}<th>{{ shown(total[name]) }}</th>{% endfor %}</tr>
</table>

{% for title, header, rows in breakdowns %}
<h2>{{ numerals[loop.index0] }}、{{ title }}</h2>
<table>
<tr>{% for column in header %}<th>{{ column }}</th>{% endfor %}</tr>
{% for row in rows %}<tr>{% for cell in row %}<td>{{ cell }}</td>{% endfor %}</tr>
{% else %}<tr><td colspan="2">无</td></tr>{% endfor %}
</table>
{% endfor %}
</body>
</html>
"""

NUMERALS = ("六", "七", "八", "九", "十", "十一", "十二")
"""Chapter numbers of the breakdowns, after the five chapters before them."""

_ENV = jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=True)


def _shown(value: object) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.2f}"
    return str(value)


def _local_date(day: date) -> str:
    return f"{day.year}年{day.month}月{day.day}日"


def _embedded(svg: str) -> str:
    return base64.b64encode(svg.encode("utf-8")).decode("ascii")


def report_html(summary: ReportSummary, by_month: ReportSummary, by_unit: ReportSummary, organ: str) -> str:
    """The report as HTML: ``summary`` grouped as asked; ``by_month`` and ``by_unit`` (same period) for the charts."""
    return _ENV.from_string(_TEMPLATE).render(
        organ=organ,
        summary=summary,
        total=summary.total.model_dump(),
        group_name=GROUP_NAMES[summary.group_by][0],
        columns=COLUMNS,
        none_label=NONE_LABEL,
        shown=_shown,
        local_date=_local_date,
        breakdowns=list(breakdown_tables(summary)),
        numerals=NUMERALS,
        per_month=_embedded(charts.cases_per_month(by_month)),
        distribution=_embedded(charts.decision_days(summary)),
        on_time=_embedded(charts.on_time_per_unit(by_unit)),
    )


def to_pdf(summary: ReportSummary, by_month: ReportSummary, by_unit: ReportSummary, organ: str) -> bytes:
    return write_pdf(report_html(summary, by_month, by_unit, organ))
