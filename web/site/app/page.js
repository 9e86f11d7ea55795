import LinuxVM from "../components/LinuxVM";

export default function Home() {
  return (
    <main>
      <header>
        <h1>x86lab</h1>
        <p>
          Linux boots below on <a href="https://github.com/copy/v86">v86</a>, an x86
          emulator compiled to WebAssembly. Its serial console is the terminal: type, paste
          (Ctrl+Shift+V) and copy (Ctrl+Shift+C) as in any terminal.
        </p>
      </header>
      <LinuxVM manifestUrl="x86lab-manifest.json" />
    </main>
  );
}
