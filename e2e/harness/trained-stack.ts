import { inject } from "vitest";
import type { Profile } from "@likeness/contracts";
import { Client } from "./client.js";
import { Stack } from "./stack.js";

/** A stack whose user "alice" already has a profile trained from the sample inputs. */
export async function startTrainedStack(
  name: string,
  workerEnv: Record<string, string>,
): Promise<{ stack: Stack; a: Client; profile: Profile }> {
  const samples = inject("samples");
  if ("error" in samples) throw new Error(`sample inputs: ${samples.error}`);
  const stack = await Stack.start({ name, workerEnv });
  try {
    const a = await stack.withLogs(() => Client.signup(stack.url, "alice"));
    const { profile } = await stack.withLogs(() => a.trainedProfile(samples));
    return { stack, a, profile };
  } catch (err) {
    await stack.close();
    throw err;
  }
}
