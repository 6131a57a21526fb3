"""reporting stage: the PRISMA 2020 flow diagram and checklist, and the review report
(HTML, DOCX, CSV), all derived from the review store."""

from __future__ import annotations

from metasift.reporting.checklist import CHECKLIST, prisma_checklist
from metasift.reporting.prisma import PrismaCounts, PrismaError, draw_prisma, prisma_counts
from metasift.reporting.report import ReportPaths, build_report
from metasift.reporting.tables import store_checksum

__all__ = [
    "CHECKLIST",
    "PrismaCounts",
    "PrismaError",
    "ReportPaths",
    "build_report",
    "draw_prisma",
    "prisma_checklist",
    "prisma_counts",
    "store_checksum",
]
