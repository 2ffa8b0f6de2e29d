//! gatehouse: the security data layer.
