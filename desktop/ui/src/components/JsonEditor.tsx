import { useEffect, useRef } from "react";
import { defaultKeymap, history, historyKeymap, indentWithTab } from "@codemirror/commands";
import { json, jsonParseLinter } from "@codemirror/lang-json";
import { bracketMatching, indentOnInput } from "@codemirror/language";
import { linter, lintGutter } from "@codemirror/lint";
import { EditorState } from "@codemirror/state";
import { EditorView, keymap, lineNumbers } from "@codemirror/view";

/**
 * A JSON value in a code editor (CodeMirror 6): highlighting, bracket
 * matching, undo, and syntax errors marked where they are as you type. The
 * editable area carries `id` and the ARIA attributes, so the field's label,
 * error text and `aria-invalid` work as on any input.
 */
export function JsonEditor(props: {
  id: string;
  value: string;
  onChange: (value: string) => void;
  onBlur?: () => void;
  invalid?: boolean;
  describedBy?: string;
  required?: boolean;
}) {
  const host = useRef<HTMLDivElement>(null);
  const view = useRef<EditorView | null>(null);
  // The latest callbacks, for listeners made once.
  const onChange = useRef(props.onChange);
  onChange.current = props.onChange;
  const onBlur = useRef(props.onBlur);
  onBlur.current = props.onBlur;

  useEffect(() => {
    const v = new EditorView({
      parent: host.current!,
      state: EditorState.create({
        doc: props.value,
        extensions: [
          lineNumbers(),
          history(),
          bracketMatching(),
          indentOnInput(),
          json(),
          linter(jsonParseLinter(), { delay: 300 }),
          lintGutter(),
          keymap.of([...defaultKeymap, ...historyKeymap, indentWithTab]),
          EditorView.lineWrapping,
          EditorView.updateListener.of((u) => {
            if (u.docChanged) onChange.current(u.state.doc.toString());
            if (u.focusChanged && !u.view.hasFocus) onBlur.current?.();
          }),
        ],
      }),
    });
    view.current = v;
    return () => {
      v.destroy();
      view.current = null;
    };
    // Made once; the value and attributes follow below.
  }, []);

  // A value set from outside (a reload, a reset) replaces the text.
  useEffect(() => {
    const v = view.current;
    if (v && v.state.doc.toString() !== props.value) {
      v.dispatch({ changes: { from: 0, to: v.state.doc.length, insert: props.value } });
    }
  }, [props.value]);

  useEffect(() => {
    const el = view.current?.contentDOM;
    if (!el) return;
    el.id = props.id;
    el.setAttribute("aria-multiline", "true");
    el.setAttribute("aria-invalid", String(!!props.invalid));
    if (props.describedBy) el.setAttribute("aria-describedby", props.describedBy);
    else el.removeAttribute("aria-describedby");
    if (props.required) el.setAttribute("aria-required", "true");
    else el.removeAttribute("aria-required");
    const label = document.querySelector(`label[for="${CSS.escape(props.id)}"]`);
    if (label) {
      if (!label.id) label.id = `${props.id}-label`;
      el.setAttribute("aria-labelledby", label.id);
    }
  }, [props.id, props.invalid, props.describedBy, props.required]);

  return <div ref={host} className="json-editor" />;
}
