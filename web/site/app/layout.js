import "@xterm/xterm/css/xterm.css";
import "./site.css";

export const metadata = {
  title: "x86lab: Linux in your browser",
  description: "A Linux kernel and BusyBox booting on the v86 x86 emulator, in the page.",
};

export const viewport = { width: "device-width", initialScale: 1 };

export default function RootLayout({ children }) {
  return (
    <html lang="en">
      <body>{children}</body>
    </html>
  );
}
