"""The only place that talks to WeChat: service account, mini-program, message push and WeChat Pay v3.

Every base URL comes from `app.config.Settings`; the embedded default points them at `wechat.emulator`."""
