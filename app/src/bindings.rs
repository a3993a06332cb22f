//! TypeScript bindings for the command table: every input and output type
//! (and what they contain) declared once, plus a `Commands` map from command
//! name to its input and output. The UI imports these instead of hand copies;
//! a test keeps the committed file equal to what the Rust types say.

use std::any::TypeId;
use std::collections::{BTreeMap, BTreeSet, HashSet};

use ts_rs::{TypeVisitor, TS};

/// Where the committed bindings live, relative to the workspace root.
pub const BINDINGS_PATH: &str = "desktop/ui/src/generated/bindings.ts";

#[derive(Default)]
pub(crate) struct Bindings {
    visited: HashSet<TypeId>,
    decls: BTreeMap<String, String>,
    commands: Vec<(&'static str, String, String)>,
}

impl TypeVisitor for Bindings {
    fn visit<T: TS + 'static + ?Sized>(&mut self) {
        if !self.visited.insert(TypeId::of::<T>()) {
            return;
        }
        // Primitives and std containers have no declaration of their own.
        if T::output_path().is_some() {
            self.decls.entry(T::ident()).or_insert_with(T::decl);
        }
        T::visit_dependencies(self);
        T::visit_generics(self);
    }
}

impl Bindings {
    pub(crate) fn command<I: TS + 'static, O: TS + 'static>(&mut self, name: &'static str) {
        self.visit::<I>();
        self.visit::<O>();
        self.commands.push((name, I::name(), O::name()));
    }

    pub(crate) fn extra<T: TS + 'static>(&mut self) {
        self.visit::<T>();
    }

    pub(crate) fn render(&self) -> String {
        let mut out = String::from(
            "// Generated from the Rust command table by\n\
             //   FLOWKEEP_UPDATE_BINDINGS=1 cargo test -p flowkeep-store --lib bindings\n\
             // Do not edit: CI fails when this file and the Rust types disagree.\n\n",
        );
        for decl in self.decls.values() {
            out.push_str("export ");
            out.push_str(&json_numbers(decl));
            out.push_str("\n\n");
        }
        out.push_str("/** Every command: its input and output. */\nexport type Commands = {\n");
        for (name, input, output) in &self.commands {
            out.push_str(&format!(
                "  {name}: {{ input: {}; output: {} }};\n",
                json_numbers(input),
                json_numbers(output)
            ));
        }
        out.push_str("};\n\nexport type CommandName = keyof Commands;\n\n");
        out.push_str("export const COMMAND_NAMES: CommandName[] = [\n");
        let names: BTreeSet<_> = self.commands.iter().map(|c| c.0).collect();
        for name in names {
            out.push_str(&format!("  \"{name}\",\n"));
        }
        out.push_str("];\n");
        out
    }
}

/// ts-rs maps 64-bit integers to `bigint`, but they travel as JSON numbers and
/// `JSON.parse` yields `number`. Every such value here (milliseconds since the
/// epoch, revisions, counts, sequence numbers) stays far below 2^53.
fn json_numbers(ts: &str) -> String {
    ts.replace("bigint", "number")
}
