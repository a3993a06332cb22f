import { z } from "zod";
import { formatProblem } from "../config/schema";

/** The create/edit dialog's form; the same limits as the Rust command. */
export const workflowFormSchema = z.object({
  name: z.string().trim().min(1, "is required").max(200, "must be at most 200 characters"),
  description: z.string().max(10000, "must be at most 10000 characters"),
  version: z
    .string()
    .trim()
    .refine((v) => v === "" || formatProblem("semver", v) === null, "must be a semantic version like 1.2.3"),
  tags: z
    .string()
    .refine(
      (v) => splitTags(v).every((t) => [...t].length <= 50 && /^[\p{L}\p{N}\-_.:/]+$/u.test(t)),
      "each tag: 1 to 50 letters, digits or - _ . : /",
    )
    .refine((v) => splitTags(v).length <= 20, "at most 20 tags"),
});

export type WorkflowFormValues = z.input<typeof workflowFormSchema>;

export function splitTags(s: string): string[] {
  return s
    .split(/[,\s]+/)
    .map((t) => t.trim())
    .filter((t) => t !== "");
}
