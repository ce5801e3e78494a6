// The page the browser test opens: shows one run's status through
// useRealtimeRun with a public access token. The server, token and run id
// come from the page's query string; every status the hook delivered is
// appended to #statuses, so the test can read the whole sequence.
import React, { useEffect, useState } from "react";
import { createRoot } from "react-dom/client";
import { useRealtimeRun } from "@trigger.dev/react-hooks";

const params = new URLSearchParams(window.location.search);

function RunStatus({ runId, baseURL, accessToken }) {
  const { run, error } = useRealtimeRun(runId, { baseURL, accessToken });
  const [seen, setSeen] = useState([]);
  useEffect(() => {
    if (run?.status) setSeen((s) => (s.at(-1) === run.status ? s : [...s, run.status]));
  }, [run?.status]);
  return (
    <div>
      <ul id="statuses">
        {seen.map((status, i) => (
          <li key={i}>{status}</li>
        ))}
      </ul>
      <p id="finished">{run?.finishedAt ? "finished" : ""}</p>
      <p id="error">{error ? String(error.message ?? error) : ""}</p>
    </div>
  );
}

createRoot(document.getElementById("root")).render(
  <RunStatus runId={params.get("run")} baseURL={params.get("api")} accessToken={params.get("token")} />,
);
