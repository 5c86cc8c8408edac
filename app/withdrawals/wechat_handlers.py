"""WeChat Pay transfer notifications (MCHTRANSFER.BILL.FINISHED) settle withdrawals."""
from app.withdrawals.payouts import on_transfer_notification
from wechat.registry import register_transfer_notification_handler


@register_transfer_notification_handler
def _settle(session, resource, _rt):
    on_transfer_notification(session, resource)
