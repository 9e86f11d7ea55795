import "@xterm/xterm/css/xterm.css";
import "./site.css";
import { EARLY_START } from "../components/earlyStart";

export const metadata = {
  title: "x86lab: Linux in your browser",
  description: "A Linux kernel and BusyBox booting on the v86 x86 emulator, in the page.",
};

export const viewport = { width: "device-width", initialScale: 1 };

export default function RootLayout({ children }) {
  return (
    <html lang="en">
      <head>
        <script dangerouslySetInnerHTML={{ __html: EARLY_START }} />
      </head>
      <body>{children}</body>
    </html>
  );
}
