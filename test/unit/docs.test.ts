/**
 * The documentation stays true to the repository: every relative link and #anchor in README.md and
 * docs/*.md resolves (GitHub's heading slugs), the README stays short with its Mermaid picture, every
 * `scm-withdraw <command> --flag` the docs show exists in the CLI's own help (and every flag of the help
 * is documented), every command is listed in the README, every configuration variable the code reads
 * is documented once, and no prose is copied from one page to another.
 */
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { COMMANDS } from "../../cli/main.ts";
import { loadCleanupConfig } from "../../lib/cleanup-config.ts";
import { loadConfig } from "../../lib/config.ts";
import { cli } from "../support/cli.ts";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const PAGES = [
  "README.md",
  ...readdirSync(join(ROOT, "docs"))
    .filter((f) => f.endsWith(".md"))
    .map((f) => `docs/${f}`),
];
const read = (page: string) => readFileSync(join(ROOT, page), "utf8");

/** The page's lines outside fenced code blocks (headings and links there are text, not Markdown). */
function proseLines(markdown: string): string[] {
  const lines: string[] = [];
  let fence: string | undefined;
  for (const line of markdown.split("\n")) {
    const marker = /^\s*(```+|~~~+)/.exec(line)?.[1];
    if (marker && (fence === undefined || marker.startsWith(fence))) {
      fence = fence === undefined ? marker : undefined;
      continue;
    }
    if (fence === undefined) lines.push(line);
  }
  return lines;
}

/** GitHub's anchor for a heading: its text, lowercased, punctuation dropped, spaces to hyphens. */
function slug(heading: string): string {
  const text = heading
    .replace(/!?\[([^\]]*)\]\([^)]*\)/g, "$1") // links and images: their text
    .replace(/`/g, "")
    .replace(/<[^>]+>/g, "")
    .replace(/\*\*|__/g, "");
  return text
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{M}\p{N}\p{Pc}\- ]/gu, "")
    .replace(/ /g, "-");
}

/** Every anchor of a page, with GitHub's -1, -2 suffixes for repeated headings. */
function anchors(markdown: string): Set<string> {
  const seen = new Map<string, number>();
  const result = new Set<string>();
  for (const line of proseLines(markdown)) {
    const heading = /^#{1,6}\s+(.+?)\s*#*\s*$/.exec(line)?.[1];
    if (heading === undefined) continue;
    const base = slug(heading);
    const count = seen.get(base) ?? 0;
    seen.set(base, count + 1);
    result.add(count === 0 ? base : `${base}-${count}`);
  }
  return result;
}

/** Inline links `[text](target)` outside code (fenced blocks and inline code spans). */
function links(markdown: string): string[] {
  const targets: string[] = [];
  for (const line of proseLines(markdown)) {
    const text = line.replace(/``[^`]*``|`[^`]*`/g, (code) => (code.includes("](") ? code.replace(/`/g, "") : ""));
    for (const match of text.matchAll(/\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)) targets.push(match[1]!);
  }
  return targets;
}

const isExternal = (target: string) => /^[a-z][a-z0-9+.-]*:/i.test(target);

describe("docs: links and anchors", () => {
  it("finds the README and the docs pages", () => {
    expect(PAGES).toContain("README.md");
    expect(PAGES.length).toBeGreaterThan(5);
  });

  it("computes GitHub's slugs", () => {
    expect(slug("`dlq list`: what failed and why")).toBe("dlq-list-what-failed-and-why");
    expect(slug("What happens to each record (the outcome table)")).toBe(
      "what-happens-to-each-record-the-outcome-table",
    );
    expect(slug("Why osls, not Serverless Framework v4")).toBe("why-osls-not-serverless-framework-v4");
    expect(slug("By hand: `scm-withdraw cleanup`")).toBe("by-hand-scm-withdraw-cleanup");
    expect(slug("The `failure_reason` attribute")).toBe("the-failure_reason-attribute");
    expect([...anchors("# A\n## A\n```\n# A\n```\n## A")]).toEqual(["a", "a-1", "a-2"]);
  });

  for (const page of PAGES) {
    it(`${page}: every relative link and #anchor resolves inside the repository`, () => {
      const problems: string[] = [];
      for (const target of links(read(page))) {
        if (isExternal(target)) continue;
        const [path = "", anchor] = target.split("#", 2);
        const file = path === "" ? join(ROOT, page) : resolve(ROOT, dirname(page), decodeURIComponent(path));
        if (relative(ROOT, file).startsWith("..") || path.startsWith("/")) {
          problems.push(`${target}: outside the repository`);
          continue;
        }
        if (!existsSync(file)) {
          problems.push(`${target}: no such file`);
          continue;
        }
        if (anchor === undefined) continue;
        if (!statSync(file).isFile() || !file.endsWith(".md")) {
          problems.push(`${target}: an anchor into something that is not a Markdown file`);
          continue;
        }
        if (!anchors(readFileSync(file, "utf8")).has(anchor)) problems.push(`${target}: no heading with that anchor`);
      }
      expect(problems).toEqual([]);
    });
  }

  it("every repository path named in code spans exists (e.g. `lib/worker.ts`, `test/support/`)", () => {
    const problems: string[] = [];
    for (const page of PAGES) {
      for (const [, path] of read(page).matchAll(
        /`((?:lib|cli|local|handlers|scripts|bench|test|events|docs)\/[\w./-]*)`/g,
      )) {
        if (!existsSync(join(ROOT, path!))) problems.push(`${page}: ${path}`);
      }
    }
    expect(problems).toEqual([]);
  });
});

describe("docs: each fact in one place", () => {
  it("no run of 12 words of prose appears on two pages (link to the page that says it instead)", () => {
    const owners = new Map<string, string>();
    const repeated: string[] = [];
    for (const page of PAGES) {
      const prose = proseLines(read(page)).filter((line) => !/^\s*(\||#)/.test(line));
      const words = prose
        .join(" ")
        .split(/\s+/)
        .filter((w) => w !== "");
      for (let i = 0; i + 12 <= words.length; i++) {
        const run = words.slice(i, i + 12).join(" ");
        const owner = owners.get(run);
        if (owner === undefined) owners.set(run, page);
        else if (owner !== page && !repeated.some((r) => r.startsWith(`${owner} and ${page}`))) {
          repeated.push(`${owner} and ${page}: "${run}"`);
        }
      }
    }
    expect(repeated).toEqual([]);
  });
});

describe("docs: the README", () => {
  const readme = read("README.md");

  it("is at most 250 lines", () => {
    expect(readme.trimEnd().split("\n").length).toBeLessThanOrEqual(250);
  });

  it("has a Mermaid picture", () => {
    expect(readme).toMatch(/^```mermaid\n[\s\S]+?\n```$/m);
  });

  it("lists every CLI command", () => {
    const missing = COMMANDS.map((c) => c.name).filter((name) => !readme.includes(`scm-withdraw ${name}`));
    expect(missing).toEqual([]);
  });

  it("every docs page starts with a title and one line saying who it is for", () => {
    for (const page of PAGES.filter((p) => p.startsWith("docs/"))) {
      const [title, blank, audience] = read(page).split("\n");
      expect({ page, title: /^# \S/.test(title ?? ""), blank, audience: /^\*For .+\*$/.test(audience ?? "") }).toEqual({
        page,
        title: true,
        blank: "",
        audience: true,
      });
    }
  });
});

/**
 * Every `scm-withdraw ...` invocation the docs show: `npx scm-withdraw`, `$ scm-withdraw` or an inline
 * code span that starts with it (a bare line such as the `npm start` banner is output, not a command). Not `scm-withdraw:` (an error line) or names such as
 * `scm-withdraw-prod-withdrawals` and `scm-withdraw/token`.
 */
function invocations(markdown: string): { line: number; words: string[] }[] {
  const found: { line: number; words: string[] }[] = [];
  markdown.split("\n").forEach((text, index) => {
    for (const match of text.matchAll(/(?:npx |\$ |`)scm-withdraw ([^`|\n]*)/g)) {
      const words = match[1]!
        .split(/\s+/)
        .map((w) => w.replace(/^\[+|[\]),.;]+$/g, ""))
        .filter((w) => w !== "");
      found.push({ line: index + 1, words });
    }
  });
  return found;
}

describe("docs: every scm-withdraw command and flag shown exists", () => {
  const helps = new Map<string, Promise<string>>();
  const helpOf = (name: string) => {
    if (!helps.has(name))
      helps.set(
        name,
        cli([...(name === "" ? [] : name.split(" ")), "--help"]).then((r) => r.stdout),
      );
    return helps.get(name)!;
  };

  it("finds the invocations it checks", () => {
    const words = invocations(
      "run `scm-withdraw dlq list --max 3`\n$ npx scm-withdraw bulk ids.txt --wait\nscm-withdraw: error: x",
    );
    expect(words.map((w) => w.words)).toEqual([
      ["dlq", "list", "--max", "3"],
      ["bulk", "ids.txt", "--wait"],
    ]);
  });

  it("every flag in a command's --help is documented somewhere in README.md or docs/", async () => {
    const all = PAGES.map(read).join("\n");
    const missing: string[] = [];
    for (const command of COMMANDS) {
      const help = await helpOf(command.name);
      for (const flag of new Set(help.match(/(?<![\w-])--[a-z][a-z-]*/g) ?? [])) {
        if (!new RegExp(`${flag}(?![\\w-])`).test(all)) missing.push(`scm-withdraw ${command.name} ${flag}`);
      }
    }
    expect(missing).toEqual([]);
  });

  for (const page of PAGES) {
    it(`${page}`, async () => {
      const problems: string[] = [];
      for (const { line, words } of invocations(read(page))) {
        if (words[0]?.startsWith("<")) continue; // `scm-withdraw <command> --help`: a placeholder
        const first = words[0]?.startsWith("-") ? undefined : words[0];
        const command =
          COMMANDS.find((c) => c.name === `${first} ${words[1]}`) ?? COMMANDS.find((c) => c.name === first);
        if (first !== undefined && command === undefined) {
          problems.push(`${page}:${line}: scm-withdraw ${words.slice(0, 2).join(" ")}: no such command`);
          continue;
        }
        const help = await helpOf(command?.name ?? "");
        for (const flag of words.filter((w) => w.startsWith("--"))) {
          const name = flag.split("=", 1)[0]!;
          if (!new RegExp(`(^|[\\s\\[])${name}(?![\\w-])`, "m").test(help)) {
            problems.push(`${page}:${line}: scm-withdraw ${command?.name ?? ""} ${name}: not in its --help`);
          }
        }
      }
      expect(problems).toEqual([]);
    });
  }
});

describe("docs: every configuration variable is documented once", () => {
  /** The variables a loader reads, found by handing it an environment that records every name asked for. */
  function variablesRead(load: (env: NodeJS.ProcessEnv) => unknown): string[] {
    const names = new Set<string>();
    const env = new Proxy({} as NodeJS.ProcessEnv, {
      get: (_, name) => {
        if (typeof name === "string") names.add(name);
        return undefined;
      },
    });
    try {
      load(env);
    } catch {
      // Required variables are missing: the loader still asked for every name first.
    }
    return [...names].filter((name) => /^[A-Z][A-Z0-9_]+$/.test(name) && !name.startsWith("AWS_"));
  }

  it("docs/configuration.md has one table row for each variable the worker and the sweep read", () => {
    const variables = [...new Set([...variablesRead(loadConfig), ...variablesRead(loadCleanupConfig)])];
    expect(variables).toContain("SCM_ENDPOINT");
    expect(variables).toContain("CLEANUP_MODE");
    const page = read("docs/configuration.md");
    const rows = (name: string) => page.split("\n").filter((l) => l.startsWith(`| \`${name}\` |`)).length;
    const wrong = variables.filter((name) => rows(name) !== 1).map((name) => `${name}: ${rows(name)} rows`);
    expect(wrong).toEqual([]);
  });
});
