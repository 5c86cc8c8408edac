"""A member's own profile: the nickname and avatar from the mini-program's fill-in, and the avatars served back."""
from __future__ import annotations


from apiflask import APIBlueprint, Schema
from apiflask.fields import Boolean, File, String
from flask import Response, request

from app.api.auth import MEMBER_AUTH, current_member_id, member_required
from app.api.member_identity import MemberOut
from app.api.web import allow_body, db, runtime
from app.api.responses import ok
from app.errors import NotFound
from app.members import profile as member_profile
from app.members import real_name
from app.members.service import get_member, profile
from app.posters.storage import poster_store
from posters.images import AVATAR_UPLOAD_MAX_BYTES

bp = APIBlueprint("member_profile", __name__, tag="identity")


class NicknameIn(Schema):
    nickname = String(required=True, metadata={
        "description": "from <input type=\"nickname\">: 1 to 32 characters, not blank, no control characters"})


class RealNameIn(Schema):
    real_name = String(required=True, metadata={"description": "as on the ID WeChat is verified with"})


class RealNameOut(Schema):
    on_file = Boolean()
    real_name = String(allow_none=True, metadata={"description": "masked, e.g. *三"})


class AvatarIn(Schema):
    file = File(required=True, metadata={"description": "the chooseAvatar image (wx.uploadFile, name \"file\")"})


@bp.put("/api/mp/me/nickname")
@member_required
@bp.input(NicknameIn, arg_name="body")
@bp.doc(summary="Set my nickname (WeChat's nickname fill-in)", security=MEMBER_AUTH,
        responses=ok("my profile with the new nickname", MemberOut),
        description="422 `nickname_blank`, `nickname_too_long` (over 32 characters) or `nickname_invalid` "
                    "(control or invisible characters).")
def set_nickname(body):
    member = member_profile.set_nickname(db(), current_member_id(), body["nickname"])
    out = profile(db(), member)
    db().commit()
    return out


@bp.post("/api/mp/me/avatar")
@member_required
@allow_body(AVATAR_UPLOAD_MAX_BYTES + (64 << 10))
@bp.input(AvatarIn, location="files", arg_name="body")
@bp.doc(summary="Upload my avatar (WeChat's chooseAvatar fill-in), multipart field `file`", security=MEMBER_AUTH,
        responses=ok("my profile with the new avatar_url", MemberOut),
        description="JPEG, PNG or WebP, at most 2 MB, 16 megapixels, at least 64x64 pixels; stored as a square "
                    "JPEG without metadata and served from `avatar_url`. 422 `image_empty`, `image_too_large`, "
                    "`image_unreadable`, `image_too_many_pixels`, `image_too_small`; 413 `payload_too_large`.")
def upload_avatar(body):
    rt = runtime()
    data = body["file"].read(AVATAR_UPLOAD_MAX_BYTES + 1)
    member = member_profile.set_avatar(db(), poster_store(rt.settings), current_member_id(), data,
                                       rt.settings.public_base_url)
    out = profile(db(), member)
    db().commit()
    return out


@bp.get("/api/mp/me/real-name")
@member_required
@bp.doc(summary="Whether my real name is on file (masked)", security=MEMBER_AUTH,
        responses=ok("whether a real name is on file, masked", RealNameOut))
def get_real_name():
    return real_name.real_name_view(runtime().settings.secret_key, get_member(db(), current_member_id()))


@bp.put("/api/mp/me/real-name")
@member_required
@bp.input(RealNameIn, arg_name="body")
@bp.doc(summary="Give or change my real name (needed by WeChat for withdrawals of 2,000 yuan or more)",
        security=MEMBER_AUTH, responses=ok("the real name on file, masked", RealNameOut),
        description="Chinese characters (parts joined by ·) or Latin letters; kept encrypted, answered masked; "
                    "every change is audited. 422 `real_name_invalid` with `details.reason` (blank, too_short, "
                    "too_long, characters). Withdrawals already requested keep the name they were requested with.")
def put_real_name(body):
    out = real_name.set_real_name(db(), runtime().settings.secret_key, current_member_id(), body["real_name"])
    db().commit()
    return out


@bp.get("/avatars/<filename>")
@bp.doc(summary="A member's uploaded avatar by content address: immutable, cacheable forever",
        responses=ok("the avatar (square JPEG)", content_type="image/jpeg"))
def avatar_image(filename: str):
    name = member_profile.avatar_file_name(filename)
    if name is None:
        raise NotFound("No such avatar.", code="avatar_not_found")
    etag = f'"{filename[:-4]}"'
    headers = {"ETag": etag, "Cache-Control": "public, max-age=31536000, immutable"}
    if filename[:-4] in request.if_none_match:
        return Response(status=304, headers=headers)
    data = poster_store(runtime().settings).get(name)
    if data is None:
        raise NotFound("No such avatar.", code="avatar_not_found")
    return Response(data, mimetype="image/jpeg", headers=headers)
