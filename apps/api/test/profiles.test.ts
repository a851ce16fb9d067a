import { afterAll, beforeAll, expect, it } from "vitest";
import sharp from "sharp";
import { UPLOAD_LIMITS } from "@likeness/contracts";
import { describeWithServices, createTestApp, signUp, type TestApp } from "./support.js";
import { facePng, faceJpeg, pngDeclaring, wav } from "./fixtures.js";

interface Part {
  field: string;
  value: Buffer | string;
  filename?: string;
  type?: string;
}

function form(parts: Part[]): FormData {
  const fd = new FormData();
  for (const p of parts) {
    if (typeof p.value === "string" && p.filename === undefined) fd.append(p.field, p.value);
    else fd.append(p.field, new File([typeof p.value === "string" ? p.value : new Uint8Array(p.value)], p.filename ?? "", { type: p.type ?? "application/octet-stream" }));
  }
  return fd;
}

describeWithServices("profiles", () => {
  let t: TestApp;
  let alice: Awaited<ReturnType<typeof signUp>>;
  let bob: Awaited<ReturnType<typeof signUp>>;
  let png: Buffer;
  let jpeg: Buffer;
  const voice4s = wav(4);

  beforeAll(async () => {
    t = await createTestApp();
    alice = await signUp(t.app);
    bob = await signUp(t.app);
    png = await facePng();
    jpeg = await faceJpeg();
  });
  afterAll(async () => {
    await t?.close();
  });

  const post = (who: { auth: Record<string, string> }, parts: Part[]) =>
    t.app.inject({ method: "POST", url: "/v1/profiles", headers: who.auth, body: form(parts) });

  const good = (): Part[] => [
    { field: "name", value: "Ada Lovelace" },
    { field: "images", value: png, filename: "ada 1.png", type: "image/png" },
    { field: "images", value: jpeg, filename: "ada-2.jpg", type: "image/jpeg" },
    { field: "voice", value: voice4s, filename: "hello.wav", type: "audio/wav" },
  ];

  async function nothingLeft(): Promise<void> {
    const profiles = await t.db.selectFrom("profiles").select((eb) => eb.fn.countAll<number>().as("n")).executeTakeFirstOrThrow();
    const inputs = await t.db.selectFrom("profile_inputs").select((eb) => eb.fn.countAll<number>().as("n")).executeTakeFirstOrThrow();
    expect(Number(profiles.n)).toBe(0);
    expect(Number(inputs.n)).toBe(0);
    expect(await t.storage.list("")).toEqual([]);
  }

  const badUploads: Array<[string, () => Part[] | Promise<Part[]>, number, string, RegExp]> = [
    ["wrong magic bytes", () => [...good().slice(0, 2), { field: "images", value: Buffer.from("GIF89a not really an image at all"), filename: "x.png" }, good()[3]!], 400, "images[1]", /not a PNG, JPEG or WebP/],
    ["a truncated PNG", () => [good()[0]!, { field: "images", value: png.subarray(0, Math.floor(png.length / 2)), filename: "half.png" }, good()[3]!], 400, "images[0]", /damaged or truncated|not a readable/],
    ["a 0-byte image", () => [good()[0]!, { field: "images", value: Buffer.alloc(0), filename: "empty.png" }, good()[3]!], 400, "images[0]", /empty/],
    ["an oversized image", () => [good()[0]!, good()[1]!, { field: "images", value: Buffer.concat([png, Buffer.alloc(UPLOAD_LIMITS.maxImageBytes)]), filename: "big.png" }, good()[3]!], 413, "images[1]", /larger than 20 MiB/],
    ["a pixel bomb", () => [good()[0]!, { field: "images", value: pngDeclaring(30000, 30000), filename: "bomb.png" }, good()[3]!], 400, "images[0]", /too many pixels/],
    ["1 s of audio", () => [...good().slice(0, 3), { field: "voice", value: wav(1), filename: "short.wav" }], 400, "voice", /too short/],
    ["a 0-byte voice sample", () => [...good().slice(0, 3), { field: "voice", value: Buffer.alloc(0), filename: "v.wav" }], 400, "voice", /empty/],
    ["a voice sample that is not audio", () => [...good().slice(0, 3), { field: "voice", value: png, filename: "v.wav" }], 400, "voice", /not a WAV/],
    ["a truncated WAV", () => [...good().slice(0, 3), { field: "voice", value: wav(6).subarray(0, 44 + 16000 * 2 * 4), filename: "cut.wav" }], 400, "voice", /truncated/],
    ["a path in the file name", () => [good()[0]!, { field: "images", value: png, filename: "../../etc/passwd.png" }, good()[3]!], 400, "images[0]", /must not contain a path/],
    ["a folder in the file name", () => [good()[0]!, good()[1]!, { field: "images", value: png, filename: "a/b.png" }, good()[3]!], 400, "images[1]", /must not contain a path/],
    ["a backslash path in the voice name", () => [...good().slice(0, 3), { field: "voice", value: voice4s, filename: "C:\\x\\v.wav" }], 400, "voice", /must not contain a path/],
    ["missing voice", () => good().slice(0, 3), 400, "voice", /voice sample is required/],
    ["no images", () => [good()[0]!, good()[3]!], 400, "images", /at least one image/],
    ["two voice samples", () => [...good(), { field: "voice", value: voice4s, filename: "again.wav" }], 400, "voice", /exactly one/],
    ["51 images", () => [good()[0]!, ...Array.from({ length: 51 }, (_, i) => ({ field: "images", value: png, filename: `p${i}.png` })), good()[3]!], 400, "images", /at most 50/],
    ["an empty name", () => [{ field: "name", value: "   " }, ...good().slice(1)], 400, "name", /must not be empty/],
    ["a bad trigger word", () => [...good(), { field: "triggerWord", value: "Bad Word!" }], 400, "triggerWord", /lowercase/],
    ["an image too small", async () => [good()[0]!, { field: "images", value: await sharp(png).resize(32, 32).png().toBuffer(), filename: "tiny.png" }, good()[3]!], 400, "images[0]", /too small/],
  ];

  for (const [what, parts, status, field, reason] of badUploads) {
    it(`refuses ${what}, naming ${field}, and leaves nothing behind`, async () => {
      const res = await post(alice, await parts());
      expect(res.statusCode, res.body).toBe(status);
      const body = res.json();
      expect(body.field).toBe(field);
      expect(body.message).toMatch(reason);
      await nothingLeft();
    });
  }

  it("names every bad file with its reason in one answer, in upload order", async () => {
    const tiny = await sharp(png).resize(32, 32).png().toBuffer();
    const res = await post(alice, [
      good()[0]!,
      { field: "images", value: tiny, filename: "tiny.png" },
      good()[1]!,
      { field: "images", value: Buffer.from("not an image at all, really"), filename: "notes.png" },
      { field: "voice", value: wav(1), filename: "short.wav" },
    ]);
    expect(res.statusCode, res.body).toBe(400);
    const body = res.json();
    expect(body).toMatchObject({ field: "images[0]", message: expect.stringMatching(/too small.*\(and 2 more\)/) });
    expect(body.issues.map((i: { field: string }) => i.field)).toEqual(["images[0]", "images[2]", "voice"]);
    expect(body.issues[1].message).toMatch(/not a PNG, JPEG or WebP/);
    expect(body.issues[2].message).toMatch(/too short/);
    await nothingLeft();
  });

  it("refuses a request that is not multipart", async () => {
    const res = await t.app.inject({ method: "POST", url: "/v1/profiles", headers: alice.auth, payload: { name: "x" } });
    expect(res.statusCode).toBe(415);
    await nothingLeft();
  });

  it("removes the objects already written when the database insert fails", async () => {
    // The explicit trigger word collides on insert (a unique index), after the objects are put.
    const first = await post(alice, [...good(), { field: "triggerWord", value: "lkcollide" }]);
    expect(first.statusCode).toBe(201);
    const before = await t.storage.list("");
    const second = await post(alice, [...good(), { field: "triggerWord", value: "lkcollide" }]);
    expect(second.statusCode).toBe(409);
    expect(second.json().field).toBe("triggerWord");
    expect(await t.storage.list("")).toEqual(before);
    const del = await t.app.inject({ method: "DELETE", url: `/v1/profiles/${first.json().id}`, headers: alice.auth });
    expect(del.statusCode).toBe(204);
    await nothingLeft();
  });

  it("creates a profile from good photos and a voice sample; only its owner sees it; delete removes it all", async () => {
    const res = await post(alice, good());
    expect(res.statusCode, res.body).toBe(201);
    const p = res.json();
    expect(p).toMatchObject({ name: "Ada Lovelace", state: "draft", triggerWord: "lkadalovelace", trainJobId: null, assets: null });
    expect(p.inputs).toHaveLength(3);
    expect(p.inputs[0]).toMatchObject({ kind: "image", name: "ada 1.png", contentType: "image/png", bytes: png.length, width: 256, height: 256 });
    expect(p.inputs[1]).toMatchObject({ kind: "image", name: "ada-2.jpg", contentType: "image/jpeg", bytes: jpeg.length });
    expect(p.inputs[2]).toMatchObject({ kind: "voice", name: "hello.wav", contentType: "audio/wav", bytes: voice4s.length });
    expect(p.inputs[2].durationSec).toBeCloseTo(4, 1);

    const prefix = `uploads/${alice.userId}/${p.id}/`;
    expect(await t.storage.list(prefix)).toEqual([`${prefix}images/01.png`, `${prefix}images/02.jpg`, `${prefix}voice/sample.wav`]);
    const stored = await t.storage.getStream(`${prefix}images/01.png`);
    expect(stored.contentType).toBe("image/png");
    const chunks: Buffer[] = [];
    for await (const c of stored.stream) chunks.push(c as Buffer);
    expect(Buffer.concat(chunks).equals(png)).toBe(true);

    // A second profile with the same name gets its own trigger word.
    const again = await post(alice, good());
    expect(again.json().triggerWord).toBe("lkadalovelace2");

    const list = await t.app.inject({ method: "GET", url: "/v1/profiles", headers: alice.auth });
    expect(list.json().profiles.map((x: { id: string }) => x.id)).toEqual([again.json().id, p.id]);
    const got = await t.app.inject({ method: "GET", url: `/v1/profiles/${p.id}`, headers: alice.auth });
    expect(got.statusCode).toBe(200);
    expect(got.json()).toEqual(p);

    // Her photos, as square thumbnails; none past the last.
    const thumb = await t.app.inject({ method: "GET", url: `/v1/profiles/${p.id}/photos/2?size=64`, headers: alice.auth });
    expect(thumb.statusCode, thumb.body).toBe(200);
    expect(thumb.headers["content-type"]).toBe("image/webp");
    expect(await sharp(thumb.rawPayload).metadata()).toMatchObject({ format: "webp", width: 64, height: 64 });
    expect((await t.app.inject({ method: "GET", url: `/v1/profiles/${p.id}/photos/3`, headers: alice.auth })).statusCode).toBe(404);
    const tooBig = await t.app.inject({ method: "GET", url: `/v1/profiles/${p.id}/photos/1?size=5000`, headers: alice.auth });
    expect(tooBig.json()).toMatchObject({ field: "size" });

    // Bob sees nothing of Alice's.
    expect((await t.app.inject({ method: "GET", url: `/v1/profiles/${p.id}/photos/1`, headers: bob.auth })).statusCode).toBe(404);
    const bobGet = await t.app.inject({ method: "GET", url: `/v1/profiles/${p.id}`, headers: bob.auth });
    expect(bobGet.statusCode).toBe(404);
    expect(bobGet.json()).toMatchObject({ error: "not_found" });
    const bobList = await t.app.inject({ method: "GET", url: "/v1/profiles", headers: bob.auth });
    expect(bobList.json().profiles).toEqual([]);
    const bobDelete = await t.app.inject({ method: "DELETE", url: `/v1/profiles/${p.id}`, headers: bob.auth });
    expect(bobDelete.statusCode).toBe(404);
    const noAuth = await t.app.inject({ method: "GET", url: `/v1/profiles/${p.id}` });
    expect(noAuth.statusCode).toBe(401);

    for (const id of [p.id, again.json().id]) {
      const del = await t.app.inject({ method: "DELETE", url: `/v1/profiles/${id}`, headers: alice.auth });
      expect(del.statusCode).toBe(204);
    }
    expect((await t.app.inject({ method: "GET", url: `/v1/profiles/${p.id}`, headers: alice.auth })).statusCode).toBe(404);
    await nothingLeft();
  });

  it("runs the profile delete hooks: one may refuse, the prefixes they name are removed", async () => {
    const res = await post(alice, good());
    const id = res.json().id as string;
    await t.storage.put(`jobs/j${id.slice(0, 8)}/mux/video.mp4`, Buffer.from("v"), "video/mp4");
    let refuse = true;
    const hook = async ({ profileId }: { userId: string; profileId: string }) => {
      if (refuse) throw Object.assign(new Error("a video is being made"), { statusCode: 409 });
      return [`jobs/j${profileId.slice(0, 8)}/`];
    };
    t.app.profileDeleteHooks.push(hook);
    try {
      const refused = await t.app.inject({ method: "DELETE", url: `/v1/profiles/${id}`, headers: alice.auth });
      expect(refused.statusCode).toBe(409);
      expect((await t.app.inject({ method: "GET", url: `/v1/profiles/${id}`, headers: alice.auth })).statusCode).toBe(200);
      refuse = false;
      const del = await t.app.inject({ method: "DELETE", url: `/v1/profiles/${id}`, headers: alice.auth });
      expect(del.statusCode).toBe(204);
    } finally {
      t.app.profileDeleteHooks.splice(t.app.profileDeleteHooks.indexOf(hook), 1);
    }
    await nothingLeft();
  });

  it("takes an explicit trigger word and sanitises control characters out of file names", async () => {
    const parts = good();
    parts[1] = { ...parts[1]!, filename: `a\u0007b${"x".repeat(150)}.png` };
    const res = await post(alice, [...parts, { field: "triggerWord", value: "lkada" }]);
    expect(res.statusCode, res.body).toBe(201);
    const p = res.json();
    expect(p.triggerWord).toBe("lkada");
    expect(p.inputs[0].name).toMatch(/^abx+\.png$/);
    expect(p.inputs[0].name.length).toBe(100);
    await t.app.inject({ method: "DELETE", url: `/v1/profiles/${p.id}`, headers: alice.auth });
    await nothingLeft();
  });
});
