"""What the openai end-to-end scripts share (scripts/e2e_openai.py, scripts/e2e_structured.py): the arguments (--base,
--key) and the openai clients; `check` and `finish` come from scripts/checks.py."""
import argparse
from openai import OpenAI
from checks import check, finish  # noqa: F401 - re-exported for the scripts

parser = argparse.ArgumentParser()
parser.add_argument("--base", required=True)
parser.add_argument("--key", required=True)
args = parser.parse_args()

client = OpenAI(base_url=args.base + "/v1", api_key=args.key, max_retries=0, timeout=300)
deepseek = OpenAI(base_url=args.base, api_key=args.key, max_retries=0, timeout=300)  # DeepSeek's base_url has no /v1
