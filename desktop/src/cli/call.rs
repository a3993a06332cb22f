//! `flowkeep call NAME [JSON]`: any command of the table by name, with the
//! same JSON input and output as `POST /api/NAME` and the window's IPC. A
//! command added to the table is reachable here without CLI code.

use flowkeep_app::{dispatch, Service, COMMANDS};
use serde_json::Value;

use super::{done, json_arg, Out};

pub(super) fn call(svc: &Service, name: Option<&str>, input: Option<&str>, list: bool) -> Out {
    if list {
        let text: String = COMMANDS
            .iter()
            .map(|c| format!("{:20} {} -> {}\n", c.name, c.input, c.output))
            .collect();
        return done(&COMMANDS, text);
    }
    let name = name.unwrap_or_default();
    let input = match input {
        Some(raw) => json_arg("input", raw)?,
        None => Value::Object(Default::default()),
    };
    let out = dispatch(svc, name, input)?;
    let text = serde_json::to_string_pretty(&out).unwrap_or_default() + "\n";
    done(&out, text)
}
