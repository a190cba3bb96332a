// Variant (a): Auth.js serves /api/auth itself.
import { handlers } from "@/auth";

export const { GET, POST } = handlers;
