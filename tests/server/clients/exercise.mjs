// Run by node with the official JavaScript client (mem0ai 3.x from npm, installed by `make
// jsclient`): every memory method of its MemoryClient against a live Engram server, each answer
// checked. Usage: node exercise.mjs URL API_KEY CLIENT_DIR (CLIENT_DIR holds node_modules/mem0ai).
// Prints "ok js <version>" at the end; a mismatch exits 1 naming the call and what came back.

import { readFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const [URL, KEY, CLIENT_DIR] = process.argv.slice(2);
const PACKAGE = join(CLIENT_DIR, "node_modules", "mem0ai");
const { version, exports } = JSON.parse(readFileSync(join(PACKAGE, "package.json"), "utf8"));
const { MemoryClient, MemoryNotFoundError, ValidationError } = await import(
  pathToFileURL(join(PACKAGE, exports["."].import)).href
);

class Mismatch extends Error {}

const show = JSON.stringify;

function check(ok, what, got) {
  if (!ok) throw new Mismatch(`${what}; got ${show(got)}`);
}

function equal(got, expected, what) {
  check(show(got) === show(expected), `${what}: expected ${show(expected)}`, got);
}

/** `call()` must throw a `kind` whose message contains `text`. */
async function refused(call, kind, text, what) {
  try {
    await call();
  } catch (error) {
    const ok = error instanceof kind && error.message.includes(text);
    const got = `${error.name}: ${error.message}`;
    check(ok, `${what}: expected a ${kind.name} saying "${text}"`, got);
    return;
  }
  throw new Mismatch(`${what}: expected a ${kind.name}, the call succeeded`);
}

const sleep = (ms) => new Promise((done) => setTimeout(done, ms));

/** Poll `fetch()` until the queued work it reports is no longer pending or running. */
async function ready(fetch, statusOf, what) {
  for (let i = 0; i < 300; i++) {
    const answer = await fetch();
    if (!["PENDING", "RUNNING", "pending", "running"].includes(statusOf(answer))) return answer;
    await sleep(50);
  }
  throw new Mismatch(`${what} did not finish in 15 s`);
}

/** The event of a queued add, once done (the client has no method for events). */
async function event(eventId) {
  const path = `/v1/event/${eventId}/`;
  const read = async () => {
    const answer = await fetch(URL + path, { headers: { Authorization: `Token ${KEY}` } });
    check(answer.ok, `GET ${path} answered ${answer.status}`, await answer.clone().text());
    return answer.json();
  };
  const done = await ready(read, (e) => e.status, `the add of event ${eventId}`);
  equal(done.status, "SUCCEEDED", "the queued add's event");
  return done;
}

const pairs = (results) => results.map((r) => [r.memory, r.event]);
const texts = (answer) => answer.results.map((m) => m.memory).sort();

/** A verbatim (infer: false) synchronous add; its memory's id. */
async function addNow(client, text, options) {
  const added = await client.add(text, { infer: false, asyncMode: false, ...options });
  equal(pairs(added.results), [[text, "ADD"]], `add("${text}")`);
  return added.results[0].id;
}

async function adds(client) {
  // The client's default: queued (v3), answered with an event to poll.
  const queued = await client.add([{ role: "user", content: "I love hiking in the Alps." }], {
    userId: "alex",
    infer: false,
    metadata: { tripKind: "alps" }, // metadata keys go verbatim, never snake_cased
  });
  equal([queued.status, typeof queued.eventId], ["PENDING", "string"], "a queued add");
  const done = await event(queued.eventId);
  equal(pairs(done.results), [["I love hiking in the Alps.", "ADD"]], "the queued add's results");
  const hiking = done.results[0].id;
  const sister = await addNow(client, "My sister lives in Oslo.", { userId: "alex" });
  // Facts extracted from a conversation (the server's offline extractor; no LLM here).
  const conversation = [
    { role: "user", content: "Hi, I'm Bo. I live in Lisbon." },
    { role: "assistant", content: "Nice!" },
  ];
  const inferred = await client.add(conversation, { userId: "bo", asyncMode: false });
  const facts = inferred.results;
  check(facts.length && facts.every((r) => r.event === "ADD"), "an inferred add: ADDs", inferred);
  check(facts.some((r) => r.memory.includes("Lisbon")), "an inferred add: Lisbon", inferred);
  await refused(() => client.add([]), Error, "empty messages", "add([])");
  return { hiking, sister, facts: facts.length };
}

async function reads(client, { hiking, sister }) {
  const one = await client.get(hiking);
  equal(
    [one.memory, one.userId, one.metadata],
    ["I love hiking in the Alps.", "alex", { tripKind: "alps" }],
    "get",
  );
  const alex = { filters: { user_id: "alex" } };
  const all = await client.getAll(alex);
  equal(texts(all), ["I love hiking in the Alps.", "My sister lives in Oslo."], "getAll");
  const page = await client.getAll({ ...alex, page: 2, pageSize: 1 });
  const paged = page.count === 2 && page.results.length === 1 && !page.next && page.previous;
  check(paged, "getAll page 2 of 1 a page", page);
  // `source`: the calling surface, for mem0's analytics (accepted, no effect).
  const found = await client.search("Where does my sister live?", {
    ...alex,
    topK: 1,
    source: "OTHERS",
  });
  equal(found.results.map((m) => m.id), [sister], "search (topK 1)");
  const score = found.results[0].score;
  check(typeof score === "number" && score > 0, "search: a score", found);
  const tagged = { AND: [{ user_id: "alex" }, { metadata: { tripKind: "alps" } }] };
  const both = await client.search("hiking", { filters: tagged });
  equal(both.results.map((m) => m.id), [hiking], "search with a metadata filter");
  const lisbon = await client.search("Lisbon", { filters: { user_id: "bo" } });
  check(lisbon.results.some((m) => m.memory.includes("Lisbon")), "search: Lisbon", lisbon);
  const topLevel = () => client.getAll({ userId: "alex" });
  await refused(topLevel, Error, "filters", "getAll with a top-level userId");
  const zero = () => client.search("x", { ...alex, topK: 0 });
  await refused(zero, ValidationError, "top_k", "search topK 0");
}

async function changes(client, { hiking, sister }) {
  const alex = { filters: { user_id: "alex" } };
  const updated = await client.update(hiking, {
    text: "I love hiking in Norway.",
    metadata: { trip: "north" },
  });
  const norway = ["I love hiking in Norway.", { trip: "north" }];
  equal([updated.memory, updated.metadata], norway, "update");
  equal((await client.get(hiking)).memory, "I love hiking in Norway.", "get after update");
  const versions = await client.history(hiking);
  equal(
    versions.map((h) => [h.event, h.oldMemory, h.newMemory]),
    [
      ["ADD", null, "I love hiking in the Alps."],
      ["UPDATE", "I love hiking in the Alps.", "I love hiking in Norway."],
    ],
    "history",
  );
  const liked = await client.feedback({
    memoryId: hiking,
    feedback: "POSITIVE",
    feedbackReason: "accurate",
  });
  const feedback = [liked.id, liked.feedback, liked.feedbackReason];
  equal(feedback, [hiking, "POSITIVE", "accurate"], "feedback");
  const batched = await client.batchUpdate([
    { memoryId: sister, text: "My sister lives in Bergen." },
    { memoryId: hiking, text: "Hikes in Norway." },
  ]);
  equal(batched.updatedCount, 2, "batchUpdate");
  const after = texts(await client.getAll(alex));
  equal(after, ["Hikes in Norway.", "My sister lives in Bergen."], "getAll after batchUpdate");
  equal((await client.batchDelete([sister])).deletedCount, 1, "batchDelete");
  await refused(() => client.get(sister), MemoryNotFoundError, sister, "get after batchDelete");
  equal((await client.delete(hiking)).message, "Memory deleted successfully!", "delete");
  await refused(() => client.get(hiking), MemoryNotFoundError, hiking, "get after delete");
  const never = "00000000-0000-4000-8000-000000000000";
  await refused(() => client.history(never), MemoryNotFoundError, never, "history of no memory");
  equal((await client.getAll(alex)).results, [], "getAll after the deletes");
}

async function entities(client, { facts }) {
  await addNow(client, "Plays chess.", { agentId: "coach", agentCustomInstructions: "Games." });
  await addNow(client, "Run notes.", { userId: "cy", runId: "r1" });
  const listed = (await client.users()).results.map((u) => [u.type, u.name, u.totalMemories]);
  const expected = [["agent", "coach", 1], ["run", "r1", 1], ["user", "bo", facts]];
  equal(listed.sort(), [...expected, ["user", "cy", 1]].sort(), "users");
  const paged = await client.users({ page: 2, pageSize: 2 });
  equal([paged.count, paged.results.map((u) => u.name)], [4, ["coach", "r1"]], "users, paged");
  equal((await client.deleteAll({ userId: "bo" })).deletedCount, facts, "deleteAll({userId})");
  const bo = await client.getAll({ filters: { user_id: "bo" } });
  equal(bo.results, [], "getAll after deleteAll");
  const coach = await client.deleteUser({ entity_type: "agent", entity_id: "coach" });
  equal(coach.message, "Entity deleted successfully.", "deleteUser (deprecated)");
  const gone = await client.deleteUsers({ agentId: "coach" });
  equal(gone, { message: "Entity deleted successfully." }, "deleteUsers({agentId})");
  const left = (await client.users()).results.map((u) => u.name).sort();
  equal(left, ["cy", "r1"], "users after the deletes");
  const everyone = await client.deleteUsers();
  equal(everyone, { message: "All users, agents, apps and runs deleted." }, "deleteUsers()");
  equal((await client.users()).results, [], "users after deleteUsers()");
}

async function project(client) {
  await client.updateProject({ customInstructions: "Short.", agentCustomInstructions: "Tools." });
  const some = await client.getProject({ fields: ["customInstructions", "agentCustomInstructions"] });
  equal(some, { customInstructions: "Short.", agentCustomInstructions: "Tools." },
    "getProject, two fields");
  const got = await client.getProject({});
  equal([got.projectId, got.agentCustomInstructions], [client.projectId, "Tools."], "getProject");
  const hook = await client.createWebhook({
    name: "h",
    url: "http://127.0.0.1:9/h",
    eventTypes: ["memory_add"],
  });
  equal((await client.getWebhooks()).map((w) => w.name), ["h"], "getWebhooks");
  const renamed = await client.updateWebhook({ webhookId: hook.webhookId, name: "h2" });
  equal(renamed.name, "h2", "updateWebhook");
  await client.deleteWebhook({ webhookId: hook.webhookId });
  equal(await client.getWebhooks(), [], "getWebhooks after deleteWebhook");
}

async function exportsAndProfiles(client) {
  await addNow(client, "Ships code on Fridays.", { userId: "ex" });
  const memories = { type: "array", items: { type: "string" } };
  const schema = { type: "object", properties: { memories } };
  const made = await client.createMemoryExport({ schema, filters: { user_id: "ex" } });
  const fetchExport = () => client.getMemoryExport({ memoryExportId: made.id });
  const exported = await ready(fetchExport, (e) => e.status, "the export");
  equal(exported, { memories: ["Ships code on Fridays."] }, "getMemoryExport");
  // The profile schema's property names are the caller's: they come back as sent.
  const profile = { type: "object", properties: { first_name: { type: "string" } } };
  const settings = await client.updateProfileSettings({
    enabled: true,
    schema: profile,
    customInstructions: "Short.",
  });
  const written = [settings.enabled, settings.entities.user.schema];
  equal(written, [true, profile], "updateProfileSettings");
  const stored = (await client.getProfileSettings()).entities.user;
  equal(stored.customInstructions, "Short.", "getProfileSettings");
  const job = await client.generateProfile({ entityId: "ex" });
  const fetchJob = () => client.getProfileJob(job.statusUrl);
  const done = await ready(fetchJob, (j) => j.job.status, "the profile job");
  equal([done.job.status, done.job.succeeded], ["succeeded", 1], "getProfileJob");
  equal((await client.getProfile({ entityId: "ex" })).status, "succeeded", "getProfile");
  equal((await client.sampleProfiles({ limit: 1 })).entityIds, ["ex"], "sampleProfiles");
  await client.deleteUsers({ userId: "ex" });
}

async function main() {
  const client = new MemoryClient({ apiKey: KEY, host: URL });
  await client.ping();
  const ids = [client.organizationId, client.projectId];
  check(ids.every(Boolean), "ping: the organization and project ids", ids);
  const added = await adds(client);
  await reads(client, added);
  await changes(client, added);
  await entities(client, added);
  await project(client);
  await exportsAndProfiles(client);
  console.log(`ok js ${version}`);
}

try {
  await main();
} catch (error) {
  const what = error instanceof Mismatch ? "mismatch" : `${error.name} (unexpected)`;
  console.error(`FAILED, ${what}: ${error.message}`);
  if (!(error instanceof Mismatch)) console.error(error.stack);
  process.exit(1);
}
