//! Asking Odoo ahead whether the API user may read, write, create or delete a model's records
//! (model-level access rights; record rules are learnt at the call): `has_access` on 18 and
//! later, `check_access_rights` on 16–17, where it is all there is (recorded on 19, where both
//! answer; `../shared/protocols/odoo.md`, "Asking for rights ahead").

use serde_json::{json, Map, Value};

use super::{OdooClient, OdooError};

impl OdooClient {
    /// Ok(Ok(())) when the API user may `operation` (`read`, `write`, `create`, `unlink`) on
    /// `model`; Ok(Err(why)) when Odoo says no, in Odoo's words when it gives them (the groups
    /// that would be allowed); Err when Odoo could not be asked.
    pub(crate) async fn may(&self, model: &str, operation: &str) -> Result<Result<(), String>, OdooError> {
        let (_, version) = self.api().await?;
        let named = || Map::from_iter([("operation".to_string(), json!(operation))]);
        if version >= 18 {
            match self.call(model, "has_access", named()).await? {
                Value::Bool(true) => return Ok(Ok(())),
                Value::Bool(false) => {}
                other => {
                    return Err(OdooError::Decode(format!(
                        "has_access answered {}",
                        crate::http::snippet(&other.to_string())
                    )))
                }
            }
        }
        // On 16–17 the question itself; on 18+ only after a no, for Odoo's words (it still
        // answers there, deprecated: asked only when something is refused anyway).
        match self.call(model, "check_access_rights", named()).await {
            // True before 18, None (null) since.
            Ok(Value::Bool(true) | Value::Null) if version < 18 => Ok(Ok(())),
            Ok(_) => Ok(Err(format!("has_access({operation}) on {model} is false"))),
            Err(OdooError::AccessError(words)) => Ok(Err(words.split_whitespace().collect::<Vec<_>>().join(" "))),
            Err(e) => Err(e),
        }
    }
}
