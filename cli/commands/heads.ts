/**
 * Each command's name, synopsis and one-line summary: what `scm-withdraw --help` and usage errors show
 * without loading a command's module. Each command module spreads its head (`{ ...HEADS.status, run }`)
 * and cli/commands/index.ts pairs each head with its loader; this file imports neither, so no command
 * imports the index that loads it.
 */
import type { CommandHead } from "../context.ts";

export const HEADS = {
  enqueue: {
    name: "enqueue",
    summary: "validate certificate ids and send one withdrawal job each",
    usage: "enqueue <certificate_id...> [--reason TEXT] [--request-id ID] [--batch-id ID]",
  },
  bulk: {
    name: "bulk",
    summary: "send every certificate id in a .txt, .csv or .jsonl file (streamed, de-duplicated)",
    usage:
      "bulk <file> [--batch-id ID] [--reason TEXT] [--dry-run] [--yes] [--wait] [--results PATH] [--format txt|csv|jsonl] [--concurrency N]",
  },
  batchStatus: {
    name: "batch status",
    summary: "count a batch's jobs by state (from the ledger); --watch follows it to the end",
    usage: "batch status <batch_id> [--watch] [--interval DURATION] [--stall-timeout DURATION]",
  },
  batchReport: {
    name: "batch report",
    summary: "write one line per job of a batch: its final state and error (from the ledger)",
    usage: "batch report <batch_id> [--out FILE] [--format csv|jsonl]",
  },
  job: {
    name: "job",
    summary: "every job of a certificate id or request_id, across batches: state, attempts, SCM's answer, who asked",
    usage: "job <certificate_id | request_id> [--no-dlq]",
  },
  dlqList: {
    name: "dlq list",
    summary:
      "count dead-lettered jobs by failure_reason and error_code, with sample ids and who asked (removes nothing)",
    usage: "dlq list [--reason R[,R...]] [--max N]",
  },
  dlqRedrive: {
    name: "dlq redrive",
    summary: "move dead-lettered jobs (by reason; invalid_message only when named) back to the withdrawals queue",
    usage: "dlq redrive [--reason R[,R...]] [--max N] [--dry-run] [--yes]",
  },
  status: {
    name: "status",
    summary: "approximate depths of the withdrawals queue and its dead-letter queue",
    usage: "status",
  },
  cleanup: {
    name: "cleanup",
    summary: "find applications still under review and enqueue a withdrawal for each (the scheduled sweep, by hand)",
    usage:
      "cleanup [--dry-run] [--status LIST] [--content TEXT] [--exclude IDS] [--exclude-file PATH] [--max N] [--min-age AGE] " +
      "[--reason TEXT] [--scm-endpoint URL] [--token-file PATH]",
  },
} as const satisfies Record<string, CommandHead>;
