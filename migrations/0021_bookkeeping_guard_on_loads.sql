-- Migration 0020 refuses the retention pass of a version from before the retirement log; this
-- refuses its loads. A version from before migration 0016 keeps no bookkeeping at all and stays
-- ready (it checks only the migrations it knows): a file it stored could have a payload that 0019 or
-- a later load logged as retired, with no return logged, and retention would delete that payload
-- while the file has it. Every load stores its file's arrays in raw.file_contents under the payload
-- lock, which in this version sets vinops.retirement_log (src/db/locks.ts). Its failed loads are
-- retried, and succeed once the host is upgraded.

CREATE TRIGGER refuse_untracked_file BEFORE INSERT ON raw.file_contents
  FOR EACH STATEMENT EXECUTE FUNCTION raw.require_payload_bookkeeping(
    'raw.file_contents: this program predates the payload bookkeeping of migrations 0018-0021 and cannot store files; upgrade it (docs/operations.md, Upgrade)');
