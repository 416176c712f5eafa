"""The app's Streamlit layer beside the pages: cached access to the engine."""
