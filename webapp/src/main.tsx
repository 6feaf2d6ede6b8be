import { render } from "preact";
import { useEffect, useState } from "preact/hooks";
import { api, link, navigate, onNavigate, setToken, token } from "./api";
import { Dashboard } from "./pages/dashboard";
import { SetPage, SetsList } from "./pages/sets";
import { ImagePage } from "./pages/image";
import { VideoPage } from "./pages/video";
import { LidarPage } from "./pages/lidar";
import { SessionPage, SessionsList } from "./pages/session";
import { JobPage, JobsList } from "./pages/jobs";
import { EmbeddingsPage } from "./pages/embeddings";
import { Problem } from "./ui";
import "./style.css";

type Me = { username: string; organization: string; role: string };

function SignIn({ onSignedIn }: { onSignedIn: (me: Me) => void }) {
  const [value, setValue] = useState("");
  const [error, setError] = useState<string | null>(null);
  async function submit(e: Event) {
    e.preventDefault();
    setToken(value.trim());
    try {
      const me = await api<Me>("GET", "/auth");
      onSignedIn(me);
      const next = new URLSearchParams(location.search).get("next");
      navigate(next && next.startsWith("/app/") ? next : "/app/", true);
    } catch (err) {
      setToken(null);
      setError(`Sign-in refused: ${(err as Error).message}`);
    }
  }
  return (
    <form class="signin" onSubmit={submit}>
      <h1>scenebase</h1>
      <label>
        Personal token
        <input name="token" type="password" value={value} onInput={(e) => setValue(e.currentTarget.value)} />
      </label>
      <button type="submit">Sign in</button>
      {error && <p class="error">{error}</p>}
    </form>
  );
}

function route(path: string, q: URLSearchParams) {
  const page = path.replace(/^\/app\/?/, "").replace(/\/$/, "");
  switch (page) {
    case "":
    case "dashboard":
      return <Dashboard name={q.get("dashboard")} />;
    case "sets":
      return q.get("set") ? <SetPage setId={q.get("set")!} /> : <SetsList />;
    case "images":
      return <ImagePage type="images" id={q.get("image")} />;
    case "objects":
      return <ImagePage type="objects" id={q.get("object")} />;
    case "videos":
      return <VideoPage id={q.get("video")} />;
    case "lidars":
      return <LidarPage id={q.get("lidar")} />;
    case "sessions":
      return q.get("session_uid") ? <SessionPage uid={q.get("session_uid")!} /> : <SessionsList />;
    case "jobs":
      return q.get("job") ? <JobPage id={q.get("job")!} /> : <JobsList />;
    case "embeddings":
      return <EmbeddingsPage />;
    case "projects":
      return <Problem text="Projects are not part of scenebase: there is no project page to show." />;
    default:
      return <Problem text={`There is no page "${page}" in the web app.`} />;
  }
}

function App() {
  const [, setTick] = useState(0);
  const [me, setMe] = useState<Me | null>(null);
  useEffect(() => onNavigate(() => setTick((t) => t + 1)), []);
  const signingIn = location.pathname === "/app/signin";
  useEffect(() => {
    if (signingIn) return;
    if (!token()) {
      navigate(`/app/signin?next=${encodeURIComponent(location.pathname + location.search)}`, true);
      return;
    }
    if (!me) api<Me>("GET", "/auth").then(setMe, () => undefined);
  }, [signingIn, me]);
  if (signingIn || !token()) return <SignIn onSignedIn={setMe} />;
  return (
    <div onClick={link as any}>
      <header>
        <a class="brand" href="/app/">scenebase</a>
        <nav>
          <a href="/app/dashboard">Dashboard</a>
          <a href="/app/sets">Sets</a>
          <a href="/app/sessions">Sessions</a>
          <a href="/app/embeddings">Embeddings</a>
          <a href="/app/jobs">Jobs</a>
        </nav>
        <span class="me" data-testid="me">
          {me ? `${me.username} · ${me.organization}` : ""}
        </span>
        <button
          class="link"
          onClick={() => {
            setToken(null);
            navigate("/app/signin");
          }}
        >
          Sign out
        </button>
      </header>
      <main>{route(location.pathname, new URLSearchParams(location.search))}</main>
    </div>
  );
}

render(<App />, document.getElementById("root")!);
