// Native touches that exist only inside the desktop window (native file
// dialogs). In a browser they are absent and the components fall back: a
// typed path with its extension checked, and a download.

import type { FieldDef } from "./generated/bindings";

export interface DesktopHooks {
  pickFile?: (field: FieldDef) => Promise<string | null>;
  saveFile?: (blob: Blob, name: string) => Promise<void>;
}

export const desktopHooks: DesktopHooks = {};
