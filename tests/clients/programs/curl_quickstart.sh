#!/usr/bin/env bash
# The Assistants API with plain curl (and jq to pick fields out of the JSON), the way the API
# reference shows it: an assistant, a thread, a message, a run polled to the end, the
# messages; then runs streamed with "stream": true, read as raw server-sent events, including a
# function call answered through submit_tool_outputs. Reads OPENAI_BASE_URL and OPENAI_API_KEY.
set -euo pipefail

API="$OPENAI_BASE_URL"
AUTH=(-H "Authorization: Bearer $OPENAI_API_KEY" -H "OpenAI-Beta: assistants=v2")
JSON=(-H "Content-Type: application/json")

post() { curl -sS --fail-with-body "$API$1" "${AUTH[@]}" "${JSON[@]}" -d "$2"; }
get() { curl -sS --fail-with-body "$API$1" "${AUTH[@]}"; }

ASSISTANT_ID=$(post /assistants '{
    "instructions": "You are a personal math tutor. Answer math questions briefly.",
    "name": "Math Tutor",
    "model": "gpt-4o"
  }' | jq -r .id)
echo "assistant id: $ASSISTANT_ID"

THREAD_ID=$(post /threads '' | jq -r .id)
echo "thread: $THREAD_ID"

post "/threads/$THREAD_ID/messages" '{
    "role": "user",
    "content": "I need to solve the equation `3x + 11 = 14`. Can you help me?"
  }' > /dev/null

RUN_ID=$(post "/threads/$THREAD_ID/runs" "{\"assistant_id\": \"$ASSISTANT_ID\"}" | jq -r .id)
STATUS=queued
while [ "$STATUS" = queued ] || [ "$STATUS" = in_progress ]; do
  sleep 0.2
  STATUS=$(get "/threads/$THREAD_ID/runs/$RUN_ID" | jq -r .status)
done
echo "run: $RUN_ID $STATUS"

get "/threads/$THREAD_ID/messages?order=asc" \
  | jq -r '.data[] | "\(.role): \(.content[0].text.value)"'

# A streamed run: print the event names and the text as it arrives.
post "/threads/$THREAD_ID/messages" '{"role": "user", "content": "And 2x = 8?"}' > /dev/null
TEXT=""
while IFS= read -r line; do
  case "$line" in
    "event: "*) echo "event: ${line#event: }" ;;
    "data: [DONE]") echo "stream done" ;;
    "data: "*)
      piece=$(printf '%s' "${line#data: }" \
        | jq -j 'select(.object == "thread.message.delta") | .delta.content[0].text.value')
      TEXT="$TEXT$piece"
      ;;
  esac
done < <(curl -sS -N --fail-with-body "$API/threads/$THREAD_ID/runs" "${AUTH[@]}" "${JSON[@]}" \
  -d "{\"assistant_id\": \"$ASSISTANT_ID\", \"stream\": true}")
echo "streamed text: $TEXT"

# A new thread and its run in one streamed request.
curl -sS -N --fail-with-body "$API/threads/runs" "${AUTH[@]}" "${JSON[@]}" -d "{
    \"assistant_id\": \"$ASSISTANT_ID\",
    \"thread\": {\"messages\": [{\"role\": \"user\", \"content\": \"What is 7 times 6?\"}]},
    \"stream\": true
  }" > /tmp/curl-create-and-run.$$
echo "first event: $(grep -m1 '^event: ' /tmp/curl-create-and-run.$$ | cut -d' ' -f2)"
echo "last event: $(grep '^event: ' /tmp/curl-create-and-run.$$ | tail -n1 | cut -d' ' -f2)"
rm -f /tmp/curl-create-and-run.$$

# A function call over the stream, answered with submit_tool_outputs (also streamed).
WEATHER_ID=$(post /assistants '{
    "instructions": "You are a weather bot. Use the provided functions to answer questions.",
    "model": "gpt-4o",
    "tools": [{"type": "function", "function": {
      "name": "get_temperature",
      "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}
    }}]
  }' | jq -r .id)
WEATHER_THREAD=$(post /threads '{"messages": [{"role": "user", "content": "Paris?"}]}' | jq -r .id)
echo "weather thread: $WEATHER_THREAD"

EVENT=""
REQUIRED=""
while IFS= read -r line; do
  case "$line" in
    "event: "*) EVENT="${line#event: }" ;;
    "data: "*) [ "$EVENT" = thread.run.requires_action ] && REQUIRED="${line#data: }" ;;
  esac
done < <(curl -sS -N --fail-with-body "$API/threads/$WEATHER_THREAD/runs" "${AUTH[@]}" \
  "${JSON[@]}" -d "{\"assistant_id\": \"$WEATHER_ID\", \"stream\": true}")
RUN_ID=$(printf '%s' "$REQUIRED" | jq -r .id)
CALL_ID=$(printf '%s' "$REQUIRED" | jq -r '.required_action.submit_tool_outputs.tool_calls[0].id')
ARGS=$(printf '%s' "$REQUIRED" \
  | jq -r '.required_action.submit_tool_outputs.tool_calls[0].function.arguments')
echo "requires action: $RUN_ID $CALL_ID $ARGS"

curl -sS -N --fail-with-body "$API/threads/$WEATHER_THREAD/runs/$RUN_ID/submit_tool_outputs" \
  "${AUTH[@]}" "${JSON[@]}" \
  -d "{\"tool_outputs\": [{\"tool_call_id\": \"$CALL_ID\", \"output\": \"18\"}], \"stream\": true}" \
  | grep '^event: ' | tail -n1 | sed 's/^event: /continuation ended: /'

get "/threads/$WEATHER_THREAD/runs/$RUN_ID" | jq -r '"weather run: \(.status)"'
get "/threads/$WEATHER_THREAD/messages?limit=1" \
  | jq -r '"weather answer: \(.data[0].content[0].text.value)"'

# Uploading a file as multipart form data.
printf 'Season tickets cost 214 crowns.\n' > /tmp/curl-notes.$$.txt
curl -sS --fail-with-body "$API/files" "${AUTH[@]}" -F purpose=assistants \
  -F "file=@/tmp/curl-notes.$$.txt;filename=notes.txt" \
  | jq -r '"file: \(.id) \(.filename) \(.bytes) \(.status)"'
rm -f /tmp/curl-notes.$$.txt
