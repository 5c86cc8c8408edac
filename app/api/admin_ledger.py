"""Operators: ledger check, any member's ledger (JSON and CSV), commission plans, grades."""
from __future__ import annotations

from apiflask import APIBlueprint, Schema
from apiflask.fields import AwareDateTime, Boolean, Dict, Integer, List, Nested, String
from apiflask.validators import Length, OneOf, Range
from flask import Response

from app.api.auth import OPERATOR_AUTH, operator_actor, operator_required
from app.api.responses import list_of, ok
from app.api.fields import Bps, Fen, Int, Text
from app.api.web import db
from app.audit.service import record
from app.commissions.plans import create_plan, list_plans, plan_as_dict
from app.reports.earnings import ledger_csv, ledger_of
from app.grades.service import create_grade, figures, grade_history, grade_of, grant_grade, list_grades
from app.ledger.service import check_ledger
from app.members.service import get_member

bp = APIBlueprint("admin_ledger", __name__, tag="ledger (admin)")


class PageIn(Schema):
    limit = Integer(load_default=50, validate=Range(1, 500))
    before_id = Integer(load_default=None, allow_none=True)


class RateIn(Schema):
    level = Int(required=True, validate=OneOf([1, 2]), metadata={"description": "1 or 2; never more"})
    bps = Bps(required=True)
    grade = Text(load_default="*", validate=Length(1, 32))
    category = Text(load_default="*", validate=Length(1, 64))
    order_kind = String(load_default="any", validate=OneOf(["any", "first", "repeat"]))


class PlanIn(Schema):
    name = String(load_default="", validate=Length(max=64))
    effective_from = AwareDateTime(load_default=None, allow_none=True,
                                   metadata={"description": "default now; never in the past"})
    hold_days = Int(load_default=7, validate=Range(0, 365))
    self_purchase = Boolean(load_default=False)
    rates = List(Nested(RateIn), required=True, validate=Length(1, 500))


class GradeIn(Schema):
    code = Text(required=True, validate=Length(1, 32))
    name = String(load_default="", validate=Length(max=64))
    rank = Int(required=True, validate=Range(0, 10000))
    auto_upgrade = Boolean(load_default=True)
    min_personal_sales_fen = Fen(load_default=None, allow_none=True, validate=Range(0))
    min_direct_referrals = Int(load_default=None, allow_none=True, validate=Range(0))
    min_downline_size = Int(load_default=None, allow_none=True, validate=Range(0))
    min_downline_sales_fen = Fen(load_default=None, allow_none=True, validate=Range(0))
    period_days = Int(load_default=None, allow_none=True, validate=Range(1, 3660))


class LedgerCheckOut(Schema):
    ok = Boolean()
    entries = Integer()
    accounts = Integer()
    unbalanced_entries = List(Dict())
    mismatched_accounts = List(Dict())
    pending_mismatches = List(Dict())
    broken_maturation_links = List(Dict())
    total_balance_fen = Integer(metadata={"description": "0 when the books balance"})


class MemberLedgerOut(Schema):
    member_id = Integer()
    balances = Dict(keys=String(), values=Integer(), metadata={"description": "per account, fen"})
    lines = List(Dict(), metadata={"description": "journal lines, newest first: id, entry_id, account, amount_fen, "
                                                  "kind, key, ref_type, ref_id, memo, created_at"})


class RateOut(Schema):
    grade = String()
    level = Integer()
    category = String()
    order_kind = String()
    bps = Integer()


class PlanOut(Schema):
    id = Integer()
    version = Integer()
    name = String()
    effective_from = String()
    hold_days = Integer()
    self_purchase = Boolean()
    created_by = String(allow_none=True)
    rates = List(Nested(RateOut))


class GradeOut(Schema):
    code = String()
    name = String()
    rank = Integer()
    auto_upgrade = Boolean()
    min_personal_sales_fen = Integer(allow_none=True)
    min_direct_referrals = Integer(allow_none=True)
    min_downline_size = Integer(allow_none=True)
    min_downline_sales_fen = Integer(allow_none=True)
    period_days = Integer(allow_none=True)


class GradeCreatedOut(Schema):
    code = String()
    rank = Integer()


class FiguresOut(Schema):
    personal_sales_fen = Integer()
    direct_referrals = Integer()
    downline_size = Integer()
    downline_sales_fen = Integer()


class GradeChangeOut(Schema):
    from_ = String(data_key="from", allow_none=True)
    to = String()
    reason = String(allow_none=True)
    actor = String()
    at = String()


class GrantedOut(Schema):
    member_id = Integer()
    from_ = String(data_key="from", allow_none=True)
    to = String()
    reason = String()


class MemberGradeOut(Schema):
    member_id = Integer()
    grade = String(allow_none=True)
    figures = Nested(FiguresOut)
    history = List(Nested(GradeChangeOut))


class GrantIn(Schema):
    grade = Text(required=True, validate=Length(1, 32))
    reason = Text(required=True, validate=Length(1, 255))


@bp.get("/api/admin/ledger/check")
@operator_required
@bp.doc(summary="Prove the books: entries balance, cached balances equal derived ones (409 when not)",
        security=OPERATOR_AUTH, responses=ok("the books balance", LedgerCheckOut)
        | {409: {"description": "the books do not balance: the same report, with what is wrong",
                 "content": {"application/json": {"schema": LedgerCheckOut}}}})
def admin_ledger_check():
    report = check_ledger(db())
    return report.as_dict(), (200 if report.ok else 409)


@bp.get("/api/admin/members/<int:member_id>/ledger")
@operator_required
@bp.input(PageIn, location="query", arg_name="page")
@bp.doc(summary="A member's balances and journal lines, newest first", security=OPERATOR_AUTH,
        responses=ok("a page of the member's ledger", MemberLedgerOut))
def admin_member_ledger(member_id: int, page):
    member = get_member(db(), member_id)
    return ledger_of(db(), member.id, page["limit"], page["before_id"])


@bp.get("/api/admin/members/<int:member_id>/ledger.csv")
@operator_required
@bp.doc(summary="Export a member's whole ledger as CSV (amounts in integer fen)", security=OPERATOR_AUTH,
        responses=ok("the ledger as CSV (UTF-8 with BOM), audited", content_type="text/csv"))
def admin_member_ledger_csv(member_id: int):
    member = get_member(db(), member_id)
    body = ledger_csv(db(), member.id)
    record(db(), operator_actor(), "ledger.exported", "member", member.id)
    db().commit()
    return Response("\ufeff" + body, mimetype="text/csv; charset=utf-8", headers={
        "Content-Disposition": f'attachment; filename="member-{member.id}-ledger.csv"'})


@bp.get("/api/admin/commission-plans")
@operator_required
@bp.doc(summary="All commission plan versions, newest first", security=OPERATOR_AUTH,
        responses=ok("every plan version", list_of(PlanOut)))
def admin_list_plans():
    return {"items": list_plans(db())}


@bp.post("/api/admin/commission-plans")
@operator_required
@bp.input(PlanIn, arg_name="body")
@bp.doc(summary="Publish a new commission plan version (versions are immutable)", security=OPERATOR_AUTH,
        responses=ok("the new plan version", PlanOut, 201))
def admin_create_plan(body):
    plan = create_plan(db(), rates=body["rates"], hold_days=body["hold_days"], self_purchase=body["self_purchase"],
                       name=body["name"], effective_from=body["effective_from"], actor=operator_actor())
    record(db(), operator_actor(), "commission_plan.created", "commission_plan", plan.id, version=plan.version)
    data = plan_as_dict(db(), plan.id)
    db().commit()
    return data, 201


@bp.get("/api/admin/grades")
@operator_required
@bp.doc(summary="Grades and their upgrade rules, lowest first", security=OPERATOR_AUTH,
        responses=ok("every grade", list_of(GradeOut)))
def admin_list_grades():
    return {"items": list_grades(db())}


@bp.post("/api/admin/grades")
@operator_required
@bp.input(GradeIn, arg_name="body")
@bp.doc(summary="Define a grade and its automatic upgrade rule", security=OPERATOR_AUTH,
        responses=ok("the new grade", GradeCreatedOut, 201))
def admin_create_grade(body):
    grade = create_grade(db(), **body)
    record(db(), operator_actor(), "grade.created", "grade", grade.code)
    db().commit()
    return {"code": grade.code, "rank": grade.rank}, 201


@bp.get("/api/admin/members/<int:member_id>/grade")
@operator_required
@bp.doc(summary="A member's grade, measured figures and grade history", security=OPERATOR_AUTH,
        responses=ok("the member's grade and figures", MemberGradeOut))
def admin_member_grade(member_id: int):
    member = get_member(db(), member_id)
    return {"member_id": member.id, "grade": grade_of(db(), member.id),
            "figures": figures(db(), member.id).__dict__, "history": grade_history(db(), member.id)}


@bp.post("/api/admin/members/<int:member_id>/grade")
@operator_required
@bp.input(GrantIn, arg_name="body")
@bp.doc(summary="Grant a permanent grade (recorded with its reason)", security=OPERATOR_AUTH,
        responses=ok("the change made", GrantedOut))
def admin_grant_grade(member_id: int, body):
    member = get_member(db(), member_id)
    change = grant_grade(db(), member.id, body["grade"], reason=body["reason"], actor=operator_actor())
    record(db(), operator_actor(), "grade.granted", "member", member.id, grade=body["grade"], reason=body["reason"])
    db().commit()
    return change
