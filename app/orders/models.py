from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, CheckConstraint, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, BigInt, UTCDateTime, utcnow
from app.types import JsonDoc


class Order(Base):
    """A shop order, created by its `paid` event. shop_order_id is the shop's key: one row per shop order."""

    __tablename__ = "orders"
    __table_args__ = (
        CheckConstraint("status IN ('paid', 'completed', 'refunded')", name="status"),
        CheckConstraint("paid_fen >= 0", name="paid_nonnegative"),
        CheckConstraint("refunded_fen >= 0 AND refunded_fen <= paid_fen", name="refund_within_paid"),
        Index("ix_orders_buyer_paid", "buyer_id", "paid_at"),
    )

    id: Mapped[int] = mapped_column(BigInt, primary_key=True)
    shop_order_id: Mapped[str] = mapped_column(String(64), unique=True)
    buyer_id: Mapped[int] = mapped_column(BigInt, ForeignKey("members.id"))
    status: Mapped[str] = mapped_column(String(16), default="paid")
    paid_fen: Mapped[int] = mapped_column(BigInteger)
    refunded_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    is_first_order: Mapped[bool] = mapped_column(Boolean, default=False)
    plan_id: Mapped[int | None] = mapped_column(BigInt, ForeignKey("commission_plans.id"))
    paid_at: Mapped[datetime] = mapped_column(UTCDateTime())
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class OrderPayer(Base):
    """Who paid an order at WeChat Pay, when the shop says (a friend may pay for someone's order). One payer
    behind many buyers' orders is a fraud signal (app/orders/signals.py)."""

    __tablename__ = "order_payers"

    order_id: Mapped[int] = mapped_column(BigInt, ForeignKey("orders.id"), primary_key=True)
    payer_openid: Mapped[str] = mapped_column(String(128), index=True)


class OrderLine(Base):
    __tablename__ = "order_lines"
    __table_args__ = (
        UniqueConstraint("order_id", "line_no"),
        CheckConstraint("quantity > 0", name="quantity_positive"),
        CheckConstraint("paid_fen >= 0", name="paid_nonnegative"),
    )

    id: Mapped[int] = mapped_column(BigInt, primary_key=True)
    order_id: Mapped[int] = mapped_column(BigInt, ForeignKey("orders.id"))
    line_no: Mapped[int] = mapped_column(Integer)
    product_id: Mapped[str] = mapped_column(String(64))
    category: Mapped[str] = mapped_column(String(64), default="")
    quantity: Mapped[int] = mapped_column(Integer)
    paid_fen: Mapped[int] = mapped_column(BigInteger)


class OrderRefund(Base):
    """One shop refund. (order, refund_id) is unique: a replayed refund is recognised, not applied twice."""

    __tablename__ = "order_refunds"
    __table_args__ = (
        UniqueConstraint("order_id", "refund_id"),
        CheckConstraint("amount_fen > 0", name="amount_positive"),
    )

    id: Mapped[int] = mapped_column(BigInt, primary_key=True)
    order_id: Mapped[int] = mapped_column(BigInt, ForeignKey("orders.id"))
    refund_id: Mapped[str] = mapped_column(String(64))
    amount_fen: Mapped[int] = mapped_column(BigInteger)
    refunded_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class ParkedOrderEvent(Base):
    """A `completed` that arrived before its `paid`: kept here and applied when the `paid` event lands."""

    __tablename__ = "parked_order_events"

    id: Mapped[int] = mapped_column(BigInt, primary_key=True)
    shop_order_id: Mapped[str] = mapped_column(String(64), index=True)
    dedupe_key: Mapped[str] = mapped_column(String(160), unique=True)
    payload: Mapped[dict] = mapped_column(JsonDoc)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
